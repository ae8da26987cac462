#!/usr/bin/env bash
# `lgpu-eval compare` end to end (eval/compare*.c, eval/report*.c):
# stories260K against a Q4_0 copy made with `lgpu quantize`, on the test set
# and the text in tests/data/eval, on the default device (lavapipe in CI):
# the three report files and the charts exist, the JSON parses and holds
# what the schema says (docs/EVALUATION.md), its perplexity is
# `lgpu-eval perplexity`'s; then on the C path: a model against itself gives
# equal answers and perplexities (JSONL perplexity data), a report without
# gnuplot says so and keeps its tables, and bad input fails clearly.
#   tests/cli_eval.sh PATH/TO/lgpu PATH/TO/lgpu-eval
set -euo pipefail

LGPU=${1:?usage: cli_eval.sh PATH/TO/lgpu PATH/TO/lgpu-eval}
EVAL=${2:?usage: cli_eval.sh PATH/TO/lgpu PATH/TO/lgpu-eval}
SRC=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${LGPU_MODELS:-$SRC/../shared/models}/stories260K.gguf
TESTS=$SRC/tests/data/eval/compare_tests.jsonl
TEXT=$SRC/tests/data/eval/ppl_small.txt

[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lgpu-test-eval-XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    [ -s "$work/err" ] && { echo "---- stderr ----" >&2; tail -30 "$work/err" >&2; }
    exit 1
}

# run DEVICE ARGS...: $rc, stdout in $work/out, stderr in $work/err ('' = the default device)
run() {
    local dev=$1
    shift
    local envs=(env -u LGPU_DEVICE)
    [ -n "$dev" ] && envs=(env LGPU_DEVICE="$dev")
    rc=0
    "${envs[@]}" "$@" >"$work/out" 2>"$work/err" </dev/null || rc=$?
}

# json_check FILE PYTHON-EXPRESSIONS...: each must be true of d = the parsed file
json_check() {
    local file=$1
    shift
    python3 - "$file" "$@" <<'EOF' || fail "$file: JSON check failed"
import json, sys
d = json.load(open(sys.argv[1]))
for expr in sys.argv[2:]:
    if not eval(expr, {"d": d}):
        sys.exit(f"not true: {expr}")
EOF
}

run "" "$LGPU" quantize "$MODEL" "$work/q4.gguf" q4_0
[ "$rc" = 0 ] || fail "lgpu quantize exited $rc"

# ---- the default device: stories260K vs its Q4_0 copy ----
GNUPLOT_OK=0
command -v gnuplot >/dev/null && GNUPLOT_OK=1
run "" "$EVAL" compare -m "$MODEL" --vs "$work/q4.gguf" --tests "$TESTS" --ppl "$TEXT" --ctx 64 \
    -n 16 --stop . -o "$work/report"
[ "$rc" = 0 ] || fail "compare exited $rc"
summary=$(grep '^examples passed' "$work/out" | tr -s ' ' || true)
for f in compare.md compare.html compare.json; do
    [ -s "$work/report/$f" ] || fail "no $f"
done
grep -q 'example 8/8' "$work/err" || fail "no progress on stderr"
grep -q '^perplexity ' "$work/out" || fail "no summary on stdout"
if [ "$GNUPLOT_OK" = 1 ]; then
    for f in compare-chart1.svg compare-chart2.svg; do grep -q '<svg' "$work/report/$f" || fail "no chart $f"; done
    [ "$(grep -c '<svg' "$work/report/compare.html")" = 2 ] || fail "the HTML does not hold 2 inline charts"
    grep -qF '![Mean score per metric](compare-chart1.svg)' "$work/report/compare.md" || fail "the Markdown links no chart"
fi
json_check "$work/report/compare.json" \
    'd["schema"] == "lgpu-eval/compare/1"' \
    'd["base"]["label"] == "stories260K.gguf" and d["tuned"]["label"] == "q4.gguf"' \
    '"Q4_0" in d["tuned"]["desc"] and "F32" in d["base"]["desc"]' \
    'd["settings"]["decoding"] == "greedy" and d["settings"]["max_tokens"] == 16 and d["settings"]["stops"] == ["."]' \
    'd["perplexity_data"]["format"] == "text"' \
    'all(d[s]["perplexity"]["ppl"] > 1 and d[s]["perplexity"]["chunk"] == 64 and d[s]["perplexity"]["tokens"] > 100 for s in ("base", "tuned"))' \
    'd["tests"]["n_examples"] == 8 and len(d["tests"]["examples"]) == 8' \
    'sorted(m["metric"] for m in d["tests"]["metrics"]) == ["contains", "exact_match", "f1", "json_valid", "regex", "rouge_l"]' \
    'sum(m["n"] for m in d["tests"]["metrics"]) == 8' \
    'all(isinstance(e[s]["output"], str) and 0 <= e[s]["score"] <= 1 and isinstance(e[s]["pass"], bool) for e in d["tests"]["examples"] for s in ("base", "tuned"))' \
    'd["tests"]["examples"][0]["id"] == "once" and d["tests"]["examples"][7]["id"] == "8"' \
    'isinstance(d["tests"]["examples"][6]["input"], list) and d["tests"]["examples"][6]["input"][1]["role"] == "user"' \
    'd["tests"]["examples"][5]["expected"] is None and d["tests"]["examples"][5]["metric"] == "json_valid"' \
    'all(e[s]["pass"] == (e[s]["score"] >= (1 if e["metric"] not in ("f1", "rouge_l") else 0.5)) for e in d["tests"]["examples"] for s in ("base", "tuned"))' \
    'd["tests"]["overall"]["base"]["passed"] == sum(e["base"]["pass"] for e in d["tests"]["examples"])' \
    'd["base"]["generation"]["generated_tokens"] == sum(e["base"]["generated_tokens"] for e in d["tests"]["examples"])' \
    'all(e[s]["generated_tokens"] <= 16 for e in d["tests"]["examples"] for s in ("base", "tuned"))' \
    "d[\"report\"][\"charts_drawn\"] == 2 * $GNUPLOT_OK"
# the greedy base answers the first example as the model's golden text goes on
json_check "$work/report/compare.json" \
    'd["tests"]["examples"][0]["base"]["output"] == ", there was a little girl named Lily"' \
    'd["tests"]["examples"][0]["base"]["pass"] and d["tests"]["examples"][0]["base"]["finish"] == "stop"'
# the perplexity is lgpu-eval perplexity's on the same text and device
base_ppl=$(python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["base"]["perplexity"]["ppl"])' \
    "$work/report/compare.json")
run "" "$EVAL" perplexity -m "$MODEL" -f "$TEXT" -c 64
[ "$rc" = 0 ] || fail "lgpu-eval perplexity exited $rc"
grep -q "Final estimate: PPL = $base_ppl " "$work/out" || fail "compare's PPL $base_ppl, perplexity says: $(tail -1 "$work/out")"
echo "default device: base PPL $base_ppl; $summary"

# ---- the C path: a model against itself, JSONL perplexity, no gnuplot ----
cp "$MODEL" "$work/same.gguf"
run cpu env LGPU_GNUPLOT=none "$EVAL" compare -m "$MODEL" --vs "$work/same.gguf" --tests "$TESTS" --ppl "$TESTS" \
    --limit 5 -n 12 --metric f1 --base-name A --vs-name B -q -o "$work/same"
[ "$rc" = 0 ] || fail "compare of a model with itself exited $rc"
[ ! -s "$work/err" ] || grep -q 'Charts were not drawn' "$work/err" || fail "unexpected stderr with -q"
json_check "$work/same/compare.json" \
    'd["base"]["label"] == "A" and d["tuned"]["label"] == "B"' \
    'd["perplexity_data"]["format"] == "jsonl" and d["base"]["perplexity"]["chunks"] == 0' \
    'd["base"]["perplexity"]["ppl"] == d["tuned"]["perplexity"]["ppl"] and d["base"]["perplexity"]["tokens"] > 50' \
    'd["tests"]["n_examples"] == 5 and d["settings"]["limit"] == 5' \
    'all(e["base"]["output"] == e["tuned"]["output"] and e["base"]["score"] == e["tuned"]["score"] for e in d["tests"]["examples"])' \
    'd["report"]["charts_drawn"] == 0 and "turned off" in d["report"]["charts_note"]'
grep -qF '> **Note:** Charts were not drawn: charts are turned off (LGPU\_GNUPLOT=none)' "$work/same/compare.md" ||
    fail "the Markdown does not say the charts are missing"
grep -qF '<p class="note"><strong>Note:</strong> Charts were not drawn' "$work/same/compare.html" ||
    fail "the HTML does not say the charts are missing"
grep -q '^| once | contains |' "$work/same/compare.md" || fail "the Markdown lost its example table"
[ "$(grep -c '<table>' "$work/same/compare.html")" -ge 4 ] || fail "the HTML lost its tables"
! ls "$work/same"/*.svg >/dev/null 2>&1 || fail "SVG files written without gnuplot"
echo "C path: a model against itself answers alike; no-gnuplot report keeps its tables"

# ---- the C path: the base against the base with a LoRA adapter ----
# A PEFT adapter folder on q and v with deterministic values (written here so
# no binary lives in the repo); at scale 0 it must change nothing.
python3 - "$work/adapter" <<'PY'
import json, os, random, struct, sys
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
rng = random.Random(7); r = 4; head = {}; blobs = []; off = 0
for l in range(5):
    for mod, out in (("q_proj", 64), ("v_proj", 32)):
        for ab, shape in (("A", [r, 64]), ("B", [out, r])):
            vals = [rng.uniform(-0.3, 0.3) for _ in range(shape[0] * shape[1])]
            name = f"base_model.model.model.layers.{l}.self_attn.{mod}.lora_{ab}.weight"
            head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * len(vals)]}
            blobs.append(struct.pack(f"<{len(vals)}f", *vals)); off += 4 * len(vals)
h = json.dumps(head).encode(); h += b" " * (-len(h) % 8)
open(f"{d}/adapter_model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
json.dump({"peft_type": "LORA", "r": r, "lora_alpha": 8, "lora_dropout": 0, "bias": "none",
           "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "stories260K"},
          open(f"{d}/adapter_config.json", "w"))
PY
run cpu env LGPU_GNUPLOT=none "$EVAL" compare -m "$MODEL" --vs "$work/adapter" --tests "$TESTS" --ppl "$TEXT" \
    --ctx 64 --limit 3 -n 12 -q -o "$work/lora"
[ "$rc" = 0 ] || fail "compare of the base with base + adapter exited $rc"
json_check "$work/lora/compare.json" \
    'd["tuned"]["adapters"][0]["path"].endswith("/adapter") and d["tuned"]["adapters"][0]["scale"] == 1' \
    'd["base"]["perplexity"]["ppl"] != d["tuned"]["perplexity"]["ppl"]' \
    'any(e["base"]["output"] != e["tuned"]["output"] for e in d["tests"]["examples"])'
run cpu env LGPU_GNUPLOT=none "$EVAL" compare -m "$MODEL" --lora "$work/adapter:0" --tests "$TESTS" --ppl "$TEXT" \
    --ctx 64 --limit 3 -n 12 -q -o "$work/lora0"
[ "$rc" = 0 ] || fail "compare with an adapter at scale 0 exited $rc"
json_check "$work/lora0/compare.json" \
    'd["base"]["perplexity"]["ppl"] == d["tuned"]["perplexity"]["ppl"]' \
    'all(e["base"]["output"] == e["tuned"]["output"] for e in d["tests"]["examples"])'
echo "C path: base + adapter differs from the base; at scale 0 it equals it"

# ---- bad input ----
expect_error() { # WANT_RC MESSAGE ARGS...
    local want=$1 msg=$2
    shift 2
    run cpu "$EVAL" compare "$@"
    [ "$rc" = "$want" ] || fail "compare $*: exit $rc, want $want"
    grep -qF -- "$msg" "$work/err" || fail "compare $*: stderr lacks '$msg'"
}
printf '%s\n' '{"id": "a", "prompt": "x", "expected": "y"}' '{"id": "r1", "prompt": "x", "expected": "(ab", "metric": "regex"}' \
    '{"id": "a", "prompt": "x", "expected": "y"}' 'not json' >"$work/bad.jsonl"
expect_error 1 "$work/bad.jsonl:2 (id \"r1\"): \"expected\": regex: missing closing parenthesis at offset 3" \
    -m "$MODEL" --vs "$work/q4.gguf" --tests "$work/bad.jsonl" -o "$work/x"
grep -qF "$work/bad.jsonl:3 (id \"a\"): the id is used on line 1 already" "$work/err" || fail "no duplicate-id line"
grep -qF "$work/bad.jsonl:4: invalid JSON" "$work/err" || fail "no invalid-JSON line"
expect_error 2 "nothing to compare with" -m "$MODEL" --tests "$TESTS" -o "$work/x"
expect_error 2 "no data: give --tests" -m "$MODEL" --vs "$work/q4.gguf" -o "$work/x"
expect_error 2 "-o DIR is required" -m "$MODEL" --vs "$work/q4.gguf" --tests "$TESTS"
expect_error 2 "unknown --metric 'bleu'" -m "$MODEL" --vs "$work/q4.gguf" --tests "$TESTS" --metric bleu -o "$work/x"
expect_error 2 "bad value '0' for -n" -m "$MODEL" --vs "$work/q4.gguf" --tests "$TESTS" -n 0 -o "$work/x"
expect_error 2 "no adapter at $work/missing-adapter" -m "$MODEL" --lora "$work/missing-adapter:0.5" --tests "$TESTS" -o "$work/x"
mkdir -p "$work/empty-adapter" && echo '{}' >"$work/empty-adapter/adapter_config.json"
expect_error 1 "empty-adapter" -m "$MODEL" --vs "$work/empty-adapter" --tests "$TESTS" -o "$work/x"
expect_error 1 "cannot load $work/missing.gguf" -m "$MODEL" --vs "$work/missing.gguf" --tests "$TESTS" -o "$work/x"
expect_error 1 "need at least 1024 tokens for a context of 512" -m "$MODEL" --vs "$work/q4.gguf" --ppl "$TEXT" -o "$work/x"
touch "$work/file"
expect_error 1 "cannot create the directory $work/file/sub" -m "$MODEL" --vs "$work/q4.gguf" --tests "$TESTS" \
    --limit 1 -n 2 -o "$work/file/sub"
run cpu "$EVAL" compare --help
[ "$rc" = 0 ] && grep -q -- '--vs MODEL|ADAPTER' "$work/out" || fail "compare --help: exit $rc"
echo "ok"
