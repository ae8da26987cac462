#!/usr/bin/env bash
# `lgpu-eval bench` and `lgpu-eval gate` against a running lgpu-serve
# (stories260K on the C path, --port 0): a concurrency sweep 1,4 with its
# JSON (schema lgpu-eval/bench/1: per level requests/s, tokens/s and
# p50/p95/p99 of TTFT, inter-token and end-to-end latency; /monitor/gpu
# samples) and its report (Markdown, HTML, JSON); /monitor/gpu's fields
# (memory, peak, utilization, NVML's absence said); gate passing against
# the same result and failing against a doctored faster baseline; an
# unreachable server and bad usage. The bench HTML opens cleanly in headless
# Chromium when node and chromium are there.
#   tests/cli_bench.sh PATH/TO/lgpu-serve PATH/TO/lgpu-eval
set -euo pipefail

SERVE=${1:?usage: cli_bench.sh PATH/TO/lgpu-serve PATH/TO/lgpu-eval}
EVAL=${2:?usage: cli_bench.sh PATH/TO/lgpu-serve PATH/TO/lgpu-eval}
SRC=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${LGPU_MODELS:-$SRC/../shared/models}/stories260K.gguf
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lgpu-test-bench-XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in err serve.log; do [ -s "$work/$f" ] && { echo "---- $f ----" >&2; tail -30 "$work/$f" >&2; }; done
    exit 1
}
json_check() { # FILE PYTHON-EXPRESSIONS...: each must be true of d = the parsed file
    local file=$1
    shift
    python3 - "$file" "$@" <<'PY' || fail "$file: JSON check failed"
import json, sys
d = json.load(open(sys.argv[1]))
for expr in sys.argv[2:]:
    if not eval(expr, {"d": d}):
        sys.exit(f"not true: {expr}")
PY
}

LGPU_DEVICE=cpu "$SERVE" -m "$MODEL" --port 0 --parallel 4 >"$work/serve.log" 2>&1 &
pid=$!
port=
for _ in $(seq 300); do
    port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\).*|\1|p' "$work/serve.log" | head -1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "lgpu-serve exited"
    sleep 0.1
done
[ -n "$port" ] || fail "lgpu-serve did not start"
URL=http://127.0.0.1:$port

# ---- /monitor/gpu ----
curl -sf "$URL/monitor/gpu" >"$work/mon.json" || fail "/monitor/gpu"
json_check "$work/mon.json" \
    'd["memory_used_bytes"] > 0 and d["memory_peak_bytes"] >= d["memory_used_bytes"]' \
    '0 <= d["utilization"] <= 1 and "decode steps" in d["utilization_source"]' \
    'isinstance(d["nvml"]["available"], bool)' \
    'd["nvml"]["available"] or "libnvidia-ml.so.1" in d["nvml"]["reason"]'

# ---- a sweep with its JSON and report ----
rc=0
"$EVAL" bench --url "$URL" --concurrency 1,4 --requests 8 --max-tokens 12 --monitor-every 0.1 \
    --json "$work/cur.json" -o "$work/report" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 0 ] || fail "bench exited $rc"
grep -q 'TTFT p50/p95/p99 ms' "$work/out" || fail "no table on stdout"
for f in bench.md bench.html bench.json; do [ -s "$work/report/$f" ] || fail "no $f"; done
json_check "$work/cur.json" \
    'd["schema"] == "lgpu-eval/bench/1" and [l["concurrency"] for l in d["levels"]] == [1, 4]' \
    'all(l["requests"] == 8 and l["failed"] == 0 and l["generated_tokens"] == 8 * 12 for l in d["levels"])' \
    'all(abs(l["requests_per_s"] - 8 / l["wall_s"]) < 1e-6 * l["requests_per_s"] for l in d["levels"])' \
    'all(abs(l["tokens_per_s"] - 96 / l["wall_s"]) < 1e-6 * l["tokens_per_s"] for l in d["levels"])' \
    'all(l[k]["p50"] <= l[k]["p95"] <= l[k]["p99"] <= l[k]["max"] for l in d["levels"] for k in ("ttft_s", "itl_s", "e2e_s"))' \
    'all(l["ttft_s"]["n"] == 8 and l["e2e_s"]["n"] == 8 and l["itl_s"]["n"] == 8 * 11 for l in d["levels"])' \
    'all(l["ttft_s"]["p50"] < l["e2e_s"]["p50"] for l in d["levels"])' \
    'd["monitor"]["available"] and len(d["monitor"]["samples"]) >= 1' \
    'all(s["memory_used_bytes"] > 0 and 0 <= s["utilization"] <= 1 for s in d["monitor"]["samples"])'
json_check "$work/report/bench.json" '"report" in d and d["report"]["files"]["html"] == "bench.html"'
grep -q 'Throughput and latency per concurrency level' "$work/report/bench.md" || fail "the Markdown lacks its table"
echo "bench: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(", ".join("c%d %.1f tok/s, TTFT p95 %.1f ms" % (l["concurrency"], l["tokens_per_s"], l["ttft_s"]["p95"]*1e3) for l in d["levels"]))' "$work/cur.json")"

# ---- gate ----
rc=0
"$EVAL" gate --baseline "$work/cur.json" --max-regression 10% "$work/cur.json" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 0 ] && grep -q '^PASS: 8 figures compared, 0 regressions' "$work/out" || fail "gate against itself: exit $rc"
python3 - "$work/cur.json" "$work/fast.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["levels"][1]["tokens_per_s"] *= 2      # a baseline twice as fast at concurrency 4
d["levels"][0]["ttft_s"]["p95"] /= 2     # and with half the TTFT p95 at concurrency 1
json.dump(d, open(sys.argv[2], "w"))
PY
rc=0
"$EVAL" gate --baseline "$work/fast.json" --max-regression 10% "$work/cur.json" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 1 ] || fail "gate against a faster baseline: exit $rc, want 1"
grep -q 'concurrency 4: tokens/s fell .* (50.0% worse, limit 10.0%)' "$work/err" || fail "gate did not name the tokens/s regression"
grep -q 'concurrency 1: TTFT p95 grew .* (100.0% worse, limit 10.0%)' "$work/err" || fail "gate did not name the TTFT regression"
grep -q '^FAIL: 8 figures compared, 2 regressions' "$work/out" || fail "gate's summary"
rc=0
"$EVAL" gate --baseline "$work/fast.json" --max-regression 200% "$work/cur.json" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 0 ] || fail "gate with a 200% allowance: exit $rc"
echo '{"levels": []}' >"$work/other.json"
rc=0
"$EVAL" gate --baseline "$work/other.json" "$work/cur.json" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 2 ] && grep -q 'not an lgpu-eval bench result' "$work/err" || fail "gate on a foreign JSON: exit $rc"
rc=0
"$EVAL" gate --baseline "$work/cur.json" --max-regression ten "$work/cur.json" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 2 ] && grep -q "want a percentage" "$work/err" || fail "gate with a bad threshold: exit $rc"
echo "gate: passes against itself, names both regressions against a doctored baseline"

# ---- errors ----
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
rc=0
"$EVAL" bench --url "$URL" --requests 2 >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 1 ] && grep -q "cannot reach $URL: Couldn't connect to server" "$work/err" || fail "unreachable server: exit $rc"
rc=0
"$EVAL" bench --url "$URL" --concurrency 1,x >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 2 ] && grep -q "concurrency '1,x'" "$work/err" || fail "bad --concurrency: exit $rc"
echo "errors: unreachable server and bad usage are named"

# ---- the report in a browser ----
if command -v node >/dev/null; then
    shot=()
    [ -n "${LGPU_EVAL_SCREENSHOT:-}" ] && shot=(--screenshot "$LGPU_EVAL_SCREENSHOT")
    rc=0
    node "$SRC/tests/browser/check_html.mjs" "${shot[@]}" --expect-text "Throughput and latency" \
        "$work/report/bench.html" >"$work/check" 2>&1 || rc=$?
    cat "$work/check"
    [ "$rc" = 0 ] || [ "$rc" = 77 ] || fail "the browser found problems in the bench report"
fi
echo "ok"
