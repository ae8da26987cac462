#!/usr/bin/env python3
"""Checks that #include lines respect the engine's floors (docs/ARCHITECTURE.md).

liblgpu is built in floors: a file may include headers of its own folder, of
any folder on a lower floor, and the public API (engine/include/lgpu/*.h).
Folders on one floor never include each other, so no circle of includes can
span two folders. The public headers include only each other (and system
headers). Programs (tools/, serve/, eval/, train/) include the public API and
their own folder's headers only. White-box tests (tests/) may include anything.

Usage: tools/check_floors.py [SOURCE_ROOT]   (exit status 1 on a violation)
"""
import os
import re
import sys

# Bottom to top. Keep in step with the picture in docs/ARCHITECTURE.md.
FLOORS = [
    ["core"],                                      # status, types, clock, threads, growable arrays
    ["format", "quant", "hub", "sample", "params"],  # file formats, block layouts, Hub client, sampler, op parameters
    ["vk", "ref"],                                 # Vulkan backend; C twins of the shaders
    ["dev"],                                       # devices, buffers, command streams (host backend; Vulkan via vk/)
    ["ops"],                                       # the op interface: C twin on the host, shader on Vulkan
    ["tok"],                                       # tokenizers, chat templates
    ["model"],                                     # model files, loading, the LLaMA graph, KV cache, adapters
    ["gen", "train"],                              # generation, perplexity, benchmarks; training
    ["eval"],                                      # text metrics, test sets
]
PROGRAMS = ["tools", "serve", "eval", "train"]
# Headers generated at build time and where they may be included from.
GENERATED = {"lgpu_shaders.h": {"vk"}}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def floor_of(folder):
    for i, names in enumerate(FLOORS):
        if folder in names:
            return i
    return None


def sources(root, sub):
    for dirpath, _, files in os.walk(os.path.join(root, sub)):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.join(dirpath, f)


def check_engine(root, errors):
    n_files = n_inc = 0
    engine = os.path.join(root, "engine")
    for path in sources(root, "engine"):
        rel = os.path.relpath(path, engine)
        folder = rel.split(os.sep)[0]
        public = folder == "include"
        here = None if public else floor_of(folder)
        if not public and here is None:
            errors.append(f"engine/{rel}: folder engine/{folder} is on no floor (add it to FLOORS and the picture)")
            continue
        n_files += 1
        for lineno, line in enumerate(open(path, encoding="utf-8"), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            n_inc += 1
            target = m.group(1)
            where = f"engine/{rel}:{lineno}: includes \"{target}\""
            top = target.split("/")[0] if "/" in target else None
            if top == "lgpu":
                continue  # the public API: every floor may use it
            if public:
                errors.append(f"{where}: a public header may include only lgpu/*.h")
                continue
            if top is None:
                if folder not in GENERATED.get(target, ()):
                    errors.append(f"{where}: name engine headers by folder (\"{folder}/...\")")
                continue
            there = floor_of(top)
            if top == folder:
                continue
            if there is None:
                errors.append(f"{where}: engine/{top} is on no floor")
            elif there >= here:
                rel_word = "the same floor" if there == here else "a floor above"
                errors.append(f"{where}: {top}/ is on {rel_word} ({folder}/ is on floor {here}, {top}/ on {there})")
    return n_files, n_inc


def check_programs(root, errors):
    n_files = n_inc = 0
    for prog in PROGRAMS:
        if os.path.join(root, prog) and not os.path.isdir(os.path.join(root, prog)):
            continue
        for path in sources(root, prog):
            rel = os.path.relpath(path, root)
            n_files += 1
            for lineno, line in enumerate(open(path, encoding="utf-8"), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                n_inc += 1
                target = m.group(1)
                if target.startswith("lgpu/"):
                    if not os.path.exists(os.path.join(root, "engine", "include", target)):
                        errors.append(f"{rel}:{lineno}: \"{target}\" is not a public header")
                    continue
                if os.path.exists(os.path.join(os.path.dirname(path), target)):
                    continue  # the program's own header
                errors.append(f"{rel}:{lineno}: includes \"{target}\": programs use the public API "
                              "(engine/include/lgpu/) and their own headers only")
    return n_files, n_inc


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    errors = []
    ef, ei = check_engine(root, errors)
    pf, pi = check_programs(root, errors)
    for e in errors:
        print(e)
    floors = " < ".join("{" + ", ".join(f) + "}" for f in FLOORS)
    print(f"check_floors: {ef} engine files ({ei} includes) against the floors {floors}; "
          f"{pf} program files ({pi} includes) against the public API: "
          f"{'OK' if not errors else str(len(errors)) + ' violation(s)'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
