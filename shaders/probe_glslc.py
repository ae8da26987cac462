#!/usr/bin/env python3
"""probe_glslc.py GLSLC EXTENSION: exit 0 if glslc compiles a compute shader
that requires EXTENSION (used by meson to decide optional shader variants)."""
import os
import subprocess
import sys
import tempfile

glslc, ext = sys.argv[1], sys.argv[2]
src = f"#version 450\n#extension {ext} : require\nlayout(local_size_x = 1) in;\nvoid main() {{}}\n"
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "probe.comp")
    open(p, "w").write(src)
    r = subprocess.run([glslc, "--target-env=vulkan1.3", p, "-o", os.path.join(d, "probe.spv")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sys.exit(r.returncode)
