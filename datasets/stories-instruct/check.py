#!/usr/bin/env python3
"""Check the stories-instruct files and print their counts.

Run from anywhere: python3 datasets/stories-instruct/check.py
Exits non-zero if any rule of the set is broken (see README.md).
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OPEN = "Once upon a time,"
MARKER = "And from that day on, they were best friends."
FILES = [
    ("train.jsonl", "alpaca"),
    ("val.jsonl", "alpaca"),
    ("chat.jsonl", "chat"),
    ("prompt_completion.jsonl", "prompt_completion"),
    ("text.jsonl", "text"),
]

errors = []


def err(msg):
    errors.append(msg)


def story_of(fmt, r):
    if fmt == "alpaca":
        return r["output"]
    if fmt == "prompt_completion":
        return r["completion"]
    if fmt == "text":
        return r["text"]
    return r["messages"][-1]["content"]


def request_of(fmt, r):
    if fmt == "alpaca":
        return r["instruction"]
    if fmt == "prompt_completion":
        return r["prompt"]
    if fmt == "chat":
        return [m["content"] for m in r["messages"] if m["role"] == "user"][0]
    return None


def norm(s):
    return " ".join(s.lower().split())


ids = {}
stories = {}
requests = {}
rows = []
print(f"{'file':26} {'lines':>5} {'bytes':>7} {'story chars':>11} {'min':>4} {'max':>4} {'mean':>5} {'with input':>10}")
for name, fmt in FILES:
    path = os.path.join(HERE, name)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        err(f"{name}: not UTF-8 ({e})")
        continue
    if not text.endswith("\n"):
        err(f"{name}: no newline at end of file")
    lens = []
    with_input = 0
    lines = text.split("\n")[:-1]
    for n, line in enumerate(lines, 1):
        where = f"{name}:{n}"
        if not line.strip():
            err(f"{where}: blank line")
            continue
        if len(line) > 1500:
            err(f"{where}: line is {len(line)} characters (limit 1500)")
        r = json.loads(line)
        if not isinstance(r, dict):
            err(f"{where}: not an object")
            continue
        rid = r.get("id")
        if not isinstance(rid, str) or not rid:
            err(f"{where}: no id")
        elif rid in ids:
            err(f"{where}: id {rid} already used at {ids[rid]}")
        else:
            ids[rid] = where
        want = {
            "alpaca": {"id", "instruction", "input", "output"},
            "chat": {"id", "messages"},
            "prompt_completion": {"id", "prompt", "completion"},
            "text": {"id", "text"},
        }[fmt]
        if set(r) != want:
            err(f"{where}: fields {sorted(r)} (want {sorted(want)})")
            continue
        if fmt == "alpaca" and r["input"]:
            with_input += 1
        if fmt == "chat":
            roles = [m["role"] for m in r["messages"]]
            body = roles[1:] if roles and roles[0] == "system" else roles
            if body != ["user", "assistant"] * (len(body) // 2) or not body:
                err(f"{where}: roles {roles}")
        s = story_of(fmt, r)
        lens.append(len(s))
        if not s.startswith(OPEN):
            err(f"{where}: story does not start with {OPEN!r}")
        if not s.endswith(MARKER) or s.count(MARKER) != 1:
            err(f"{where}: story does not end with the marker sentence once")
        if not 250 <= len(s) <= 600:
            err(f"{where}: story is {len(s)} characters (want 250-600)")
        sentences = len(re.findall(r"[.!?](?=\"?(\s|$))", s.replace("Mr.", "Mr").replace("Mrs.", "Mrs").replace("Dr.", "Dr")))
        if not 3 <= sentences <= 9:
            err(f"{where}: about {sentences} sentences")
        key = norm(s)
        if key in stories:
            err(f"{where}: same story as {stories[key]}")
        stories[key] = where
        q = request_of(fmt, r)
        if q is not None:
            k = norm(q) + "|" + norm(r.get("input", ""))
            if k in requests:
                err(f"{where}: same request as {requests[k]}")
            requests[k] = where
        rows.append((name, r))
    inp = f"{with_input}" if fmt == "alpaca" else "-"
    print(f"{name:26} {len(lines):>5} {len(raw):>7} {sum(lens):>11} {min(lens):>4} {max(lens):>4} {sum(lens)//len(lens):>5} {inp:>10}")

train_q = {norm(r["instruction"]) for f, r in rows if f == "train.jsonl"}
for f, r in rows:
    if f == "val.jsonl" and norm(r["instruction"]) in train_q:
        err(f"val.jsonl {r['id']}: instruction also in train.jsonl")

print(f"{len(ids)} records, {len(stories)} distinct stories")
for e in errors:
    print("ERROR", e)
sys.exit(1 if errors else 0)
