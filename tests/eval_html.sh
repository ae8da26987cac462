#!/usr/bin/env bash
# The HTML reports of lgpu-eval in a real browser: headless Chromium opens a
# compare report (with charts, and one written without gnuplot) through
# tests/browser/check_html.mjs, which fails on console errors or warnings,
# exceptions, failed loads, scripts and any request outside the page. A page
# with a console error and a missing image must fail the same check, so that
# a check that sees nothing cannot pass. SKIP (77) without node or Chromium.
#   tests/eval_html.sh PATH/TO/lgpu PATH/TO/lgpu-eval
# LGPU_EVAL_SCREENSHOT=FILE.png also saves a screenshot of the compare report.
set -euo pipefail

LGPU=${1:?usage: eval_html.sh PATH/TO/lgpu PATH/TO/lgpu-eval}
EVAL=${2:?usage: eval_html.sh PATH/TO/lgpu PATH/TO/lgpu-eval}
SRC=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${LGPU_MODELS:-$SRC/../shared/models}/stories260K.gguf
CHECK=$SRC/tests/browser/check_html.mjs

[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
command -v node >/dev/null || { echo "SKIP: no node"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lgpu-test-html-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in err check; do [ -s "$work/$f" ] && { echo "---- $f ----" >&2; tail -30 "$work/$f" >&2; }; done
    exit 1
}

export LGPU_DEVICE=cpu # the reports' content is the other tests' business: the fast path
"$LGPU" quantize "$MODEL" "$work/q4.gguf" q4_0 >/dev/null 2>"$work/err" || fail "lgpu quantize"
args=(compare -m "$MODEL" --vs "$work/q4.gguf" --tests "$SRC/tests/data/eval/compare_tests.jsonl"
      --ppl "$SRC/tests/data/eval/ppl_small.txt" --ctx 64 -n 16 --stop . -q)
"$EVAL" "${args[@]}" -o "$work/charts" >/dev/null 2>"$work/err" || fail "compare"
LGPU_GNUPLOT=none "$EVAL" "${args[@]}" -o "$work/plain" >/dev/null 2>"$work/err" || fail "compare without gnuplot"

shot=()
[ -n "${LGPU_EVAL_SCREENSHOT:-}" ] && shot=(--screenshot "$LGPU_EVAL_SCREENSHOT")
rc=0
node "$CHECK" "${shot[@]}" --expect-text "Task metrics" --expect-text "Perplexity" --expect-text "Examples" \
    "$work/charts/compare.html" "$work/plain/compare.html" >"$work/check" 2>&1 || rc=$?
[ "$rc" = 77 ] && { cat "$work/check"; exit 77; }
cat "$work/check"
[ "$rc" = 0 ] || fail "the browser found problems in the reports"
if command -v gnuplot >/dev/null; then
    grep -q "charts/compare.html: 5 tables, 2 SVG charts, 0 problems" "$work/check" || fail "the charts did not render"
fi

# the control: what the check must catch
cat >"$work/broken.html" <<'HTML'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>broken</title><link rel="icon" href="data:,"></head>
<body><p>broken</p><img src="missing.png" alt=""><script>console.error("broken on purpose")</script></body></html>
HTML
rc=0
node "$CHECK" "$work/broken.html" >"$work/check" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a broken page passed the check (exit $rc)"
grep -q 'console.error: broken on purpose' "$work/check" || fail "the console error was not reported"
grep -q 'missing.png' "$work/check" || fail "the failed load was not reported"
grep -q 'script element' "$work/check" || fail "the script was not reported"
echo "ok: the reports open cleanly; a broken page does not"
