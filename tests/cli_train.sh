#!/usr/bin/env bash
# `lgpu-train` end to end (train/): a few steps of LoRA on stories260K with the
# datasets/stories-instruct data, then what must hold of a run. On the default
# device (lavapipe in CI):
#   - the output folder has the PEFT adapter, the GGUF adapter, checkpoints,
#     metrics.jsonl, train_config.json and (with gnuplot) loss.png / loss.svg;
#   - the same settings from --config give the same adapter bytes;
#   - --bench prints its line.
# On the C path, where a process starts in a second (lavapipe compiles its
# pipelines in every process: seconds, minutes on a loaded machine with ASan):
#   - 2 steps, then --resume to 4, give the bytes of 4 steps directly;
#   - bad JSONL exits 1 naming file:line; --skip-invalid trains and counts;
#   - SIGINT saves a checkpoint and exits 130.
# And usage errors exit 2; an output folder with a run is not overwritten.
#   tests/cli_train.sh PATH/TO/lgpu-train          (meson passes this build's binary)
# Small on purpose: --seq-len 64, --pack, 4 steps, a 2-example validation file.
set -euo pipefail

TRAIN=${1:?usage: cli_train.sh PATH/TO/lgpu-train}
SRC=${LGPU_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
MODEL=${LGPU_MODELS:-$SRC/../shared/models}/stories260K.gguf
DATA=$SRC/datasets/stories-instruct/train.jsonl
BAD=$SRC/tests/data/jsonl/bad_lines.jsonl

[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lgpu-test-train-XXXXXX")
trap 'rm -rf "$work"' EXIT
head -n 2 "$SRC/datasets/stories-instruct/val.jsonl" >"$work/val.jsonl"

fail() {
    echo "FAIL: $*" >&2
    [ -s "$work/err" ] && { echo "---- stderr ----" >&2; tail -n 40 "$work/err" >&2; }
    [ -s "$work/out" ] && { echo "---- stdout ----" >&2; cat "$work/out" >&2; }
    exit 1
}

# run ARGS...: sets $rc; stdout in $work/out, stderr in $work/err
run() {
    rc=0
    "$TRAIN" "$@" >"$work/out" 2>"$work/err" </dev/null || rc=$?
}
t0=$SECONDS
lap() { echo "$1 ($((SECONDS - t0)) s)"; }

# the other runs below leave out the validation and the checkpoint at step 2,
# which must not change the adapter either
COMMON=(-m "$MODEL" --data "$DATA" --seq-len 64 --pack --rank 4 --dropout 0.1 --lr 1e-3 --schedule constant --log-every 1)

# ---- a run and its files ----
run "${COMMON[@]}" --val-file "$work/val.jsonl" --save-every 2 --max-steps 4 -o "$work/a"
[ "$rc" = 0 ] || fail "training run: exit $rc"
for f in adapter/adapter_config.json adapter/adapter_model.safetensors adapter.gguf checkpoint-2 checkpoint-4 \
         checkpoint-4/trainer_state.json metrics.jsonl train_config.json; do
    [ -e "$work/a/$f" ] || fail "no $f in the output folder"
done
grep -q '"r": 4' "$work/a/adapter/adapter_config.json" || fail "adapter_config.json: r is not 4"
grep -q '"lora_dropout": 0.1' "$work/a/adapter/adapter_config.json" || fail "adapter_config.json: lora_dropout is not 0.1"
[ "$(grep -c '"loss"' "$work/a/metrics.jsonl")" = 4 ] || fail "metrics.jsonl: not 4 step lines"
grep -q '"step":0,"val_loss"' "$work/a/metrics.jsonl" || fail "metrics.jsonl: no validation loss before training"
grep -q '"step":4,"val_loss"' "$work/a/metrics.jsonl" || fail "metrics.jsonl: no validation loss at the end"
grep -q '^            data .*: 320 examples (alpaca)' "$work/err" || fail "the plan does not show the data"
grep -q 'trainable parameters' "$work/err" || fail "the plan does not show the adapter"
grep -q '^step 3/4 ' "$work/err" || fail "no progress line for step 3 (stderr is not a terminal: one per --log-every)"
grep -q '^eval  step 4: val_loss' "$work/err" || fail "no evaluation line"
grep -q "^saved step 2: $work/a/checkpoint-2" "$work/err" || fail "no checkpoint line"
grep -q '^lgpu-train: done: 4 steps' "$work/out" || fail "no summary"
if command -v gnuplot >/dev/null; then
    [ -s "$work/a/loss.png" ] && [ -s "$work/a/loss.svg" ] || fail "gnuplot is installed but no loss.png / loss.svg"
    [ "$(head -c 4 "$work/a/loss.png" | od -An -c | tr -d ' ')" = '211PNG' ] || fail "loss.png is not a PNG"
    grep -q '<svg' "$work/a/loss.svg" || fail "loss.svg is not an SVG"
else
    echo "note: no gnuplot: the chart is not checked"
fi
lap "run: ok"

# ---- the same from --config (keys in both spellings, PEFT / transformers aliases), a flag on top ----
cat >"$work/config.json" <<EOF
{"model": "$MODEL", "data": "$DATA", "seq-len": 64, "packing": true, "r": 4, "lora_dropout": 0.1, "learning_rate": 0.001,
 "schedule": "constant", "log_every": 1, "max_steps": 3, "output_dir": "$work/b"}
EOF
run --config "$work/config.json" --max-steps 4 --no-chart
[ "$rc" = 0 ] || fail "--config run: exit $rc"
cmp "$work/a/adapter/adapter_model.safetensors" "$work/b/adapter/adapter_model.safetensors" ||
    fail "--config gave another adapter than the flags"
[ ! -e "$work/b/loss.png" ] || fail "--no-chart drew a chart"
lap "config: same adapter bytes"

# ---- 2 steps, then --resume to 4 == 4 steps (the C path) ----
run "${COMMON[@]}" --device cpu --max-steps 4 -o "$work/d" --no-chart
[ "$rc" = 0 ] || fail "4-step run on the C path: exit $rc"
run "${COMMON[@]}" --device cpu --max-steps 2 -o "$work/c" --no-chart
[ "$rc" = 0 ] || fail "2-step run: exit $rc"
run "${COMMON[@]}" --device cpu --max-steps 4 --resume "$work/c" --no-chart
[ "$rc" = 0 ] || fail "--resume run: exit $rc"
grep -q "resume     from $work/c at step 2" "$work/err" || fail "the plan does not show the resume"
cmp "$work/d/adapter/adapter_model.safetensors" "$work/c/adapter/adapter_model.safetensors" ||
    fail "2 steps + --resume to 4 differ from 4 steps"
[ "$(grep -c '"loss"' "$work/c/metrics.jsonl")" = 4 ] || fail "metrics.jsonl after the resume: not 4 step lines"
# --resume alone takes the run's settings from its train_config.json; a flag on top
run --resume "$work/c/checkpoint-4" --max-steps 5 --no-chart
[ "$rc" = 0 ] || fail "--resume with train_config.json: exit $rc"
grep -q 'settings of the resumed run from' "$work/err" || fail "--resume alone: train_config.json not used"
[ -d "$work/c/checkpoint-5" ] || fail "--resume alone: no checkpoint-5"
lap "resume: same adapter bytes"

# ---- an output folder that has a run ----
run "${COMMON[@]}" --device cpu --max-steps 1 -o "$work/a"
[ "$rc" = 2 ] || fail "training into a folder with a run: exit $rc, want 2"
grep -q -- '--overwrite-output-dir' "$work/err" || fail "no hint at --overwrite-output-dir"

# ---- bad data ----
run -m "$MODEL" --device cpu --data "$BAD" --seq-len 64 --pack --max-steps 1 -o "$work/bad"
[ "$rc" = 1 ] || fail "bad JSONL: exit $rc, want 1"
grep -qF "lgpu-train: $BAD:2: invalid JSON" "$work/err" || fail "bad JSONL: the message does not name $BAD:2"
run -m "$MODEL" --device cpu --data "$BAD" --seq-len 64 --pack --max-steps 1 -o "$work/skip" --skip-invalid --no-chart
[ "$rc" = 0 ] || fail "--skip-invalid: exit $rc"
grep -q 'skipped    8 bad lines' "$work/err" || fail "--skip-invalid: the skipped count is not printed"
grep -qF "$BAD:4 (id \"bad-04\")" "$work/err" || fail "--skip-invalid: the reasons are not printed"
lap "bad data: ok"

# ---- usage errors: exit 2, before any model is loaded ----
expect_usage() { # MESSAGE ARGS...
    local msg=$1
    shift
    run "$@"
    [ "$rc" = 2 ] || fail "lgpu-train $*: exit $rc, want 2"
    grep -qF -- "$msg" "$work/err" || fail "lgpu-train $*: stderr lacks '$msg'"
}
expect_usage "unknown option '--bogus'" --data "$DATA" -o "$work/u" --bogus
expect_usage "bad value 'abc' for --lr" --data "$DATA" -o "$work/u" --lr abc
expect_usage "bad value '0' for --rank" --data "$DATA" -o "$work/u" --rank 0
expect_usage "bad value 'warm' for --schedule" --data "$DATA" -o "$work/u" --schedule warm
expect_usage "bad value 'q,x' for --targets" --data "$DATA" -o "$work/u" --targets q,x
expect_usage "--seq-len needs a value" --data "$DATA" -o "$work/u" --seq-len
expect_usage "--data FILE.jsonl is required" -o "$work/u"
expect_usage "exclude each other" --data "$DATA" -o "$work/u" --val-file "$work/val.jsonl" --val-split 0.1
echo '{"data": "x.jsonl", "learning_rat": 0.1}' >"$work/badkey.json"
expect_usage 'unknown key "learning_rat"' --config "$work/badkey.json"
echo '{"rank": "four"}' >"$work/badval.json"
expect_usage 'key "rank" must be a whole number' --config "$work/badval.json"
run --help
[ "$rc" = 0 ] && grep -q -- '--grad-accum N' "$work/out" && grep -q 'default: 0.0002' "$work/out" ||
    fail "--help: exit $rc or no options with defaults"
lap "usage: ok"

# ---- Ctrl-C: a checkpoint and exit 130 (the C path) ----
"$TRAIN" -m "$MODEL" --device cpu --data "$DATA" --seq-len 64 --pack --max-steps 1000000 --log-every 1 --no-chart \
    -o "$work/int" >"$work/out" 2>"$work/err" </dev/null &
pid=$!
for _ in $(seq 600); do grep -q '^step 2/' "$work/err" && break; sleep 0.1; done
grep -q '^step 2/' "$work/err" || { kill "$pid"; fail "SIGINT: the run did not start"; }
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 130 ] || fail "SIGINT: exit $rc, want 130"
grep -q '^lgpu-train: interrupted; continue with: lgpu-train --resume' "$work/err" || fail "SIGINT: no resume hint"
ls -d "$work"/int/checkpoint-* >/dev/null 2>&1 || fail "SIGINT: no checkpoint"
[ ! -e "$work/int/adapter" ] || fail "SIGINT: a final adapter was written"
lap "SIGINT: ok"

# ---- --bench, on both ----
for dev in "" cpu; do
    run -m "$MODEL" ${dev:+--device $dev} --bench --bench-steps 2 --bench-warmup 1 --seq-len 64
    [ "$rc" = 0 ] || fail "--bench ${dev:-(default device)}: exit $rc"
    grep -Eq '^train: stories260K .* micro-batch 1 x seq 64, rank 8: [0-9]+ tokens/s, peak [0-9.]+ [KMG]iB' "$work/out" ||
        fail "--bench: no result line"
    cat "$work/out"
done
lap "bench: ok"
echo "ok"
