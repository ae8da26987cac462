#!/usr/bin/env bash
# `lgpu chat` end to end (tools/cmd_chat.c): two user turns piped on stdin,
# then EOF, on stories260K with greedy sampling, on the C path and on the
# default device (lavapipe in CI); then without -m (the embedded model) and
# bad flags.
#   tests/cli_chat.sh PATH/TO/lgpu          (meson passes this build's binary)
#
# What is exact: turn 1 feeds BOS + the ChatML rendering of the conversation
# (stories260K has no template of its own) and samples with the same generator
# as `lgpu run`, so its reply equals `lgpu run` on that text with the template's
# stop strings. Later turns decode only what the rendering adds after the
# KV-cached reply, tokenized on its own, so a fresh `run` of the whole
# conversation tokenizes differently: for them only a reply is required.
set -euo pipefail

LGPU=${1:?usage: cli_chat.sh PATH/TO/lgpu}
MODEL=${LGPU_MODELS:-$(dirname "$0")/../../shared/models}/stories260K.gguf
N=12
GREEDY=(--temp 0 -n "$N")
STOPS=(--stop '<|im_end|>' --stop '<|im_start|>')
PROMPT1=$'<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n'

[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lgpu-test-chat-XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    [ -s "$work/err" ] && { echo "---- stderr ----" >&2; cat "$work/err" >&2; }
    exit 1
}

# run_lgpu DEVICE STDIN ARGS...: sets $out (stdout, exactly), $rc; stderr in $work/err.
# DEVICE '' leaves LGPU_DEVICE unset: the default device.
run_lgpu() {
    local dev=$1 input=$2
    shift 2
    local envs=(env -u LGPU_DEVICE)
    [ -n "$dev" ] && envs=(env LGPU_DEVICE="$dev")
    rc=0
    printf '%s' "$input" | "${envs[@]}" "$LGPU" "$@" >"$work/out" 2>"$work/err" || rc=$?
    out=$(cat "$work/out"; printf x) # keep trailing newlines
    out=${out%x}
}

check_device() {
    local dev=$1 name=${1:-default}
    # the reference: `lgpu run` echoes the prompt, then streams the reply and a newline
    run_lgpu "$dev" "" run -m "$MODEL" "${GREEDY[@]}" "${STOPS[@]}" -p "$PROMPT1"
    [ "$rc" = 0 ] || fail "$name: lgpu run exited $rc"
    [ "${out#"$PROMPT1"}" != "$out" ] || fail "$name: lgpu run did not echo the prompt: '$out'"
    local reply1=${out#"$PROMPT1"}
    [ "${reply1: -1}" = $'\n' ] || fail "$name: lgpu run output does not end with a newline"
    reply1=${reply1%$'\n'}
    [ -n "$reply1" ] || fail "$name: lgpu run generated nothing"

    # an empty line is skipped; the last line has no newline before EOF
    run_lgpu "$dev" $'Hello there\n\nTell me a story' chat -m "$MODEL" "${GREEDY[@]}" -v
    [ "$rc" = 0 ] || fail "$name: lgpu chat exited $rc at EOF"
    grep -q 'template chatml' "$work/err" || fail "$name: no 'template chatml' in the banner"
    grep -q '^prompt [0-9]* tokens' "$work/err" || fail "$name: -v printed no statistics"
    [ "${out#"$reply1"$'\n'}" != "$out" ] ||
        fail "$name: chat turn 1 differs from lgpu run: got '$out', want '$reply1' first"
    local rest=${out#"$reply1"$'\n'}
    [ -n "$rest" ] && [ "$rest" != $'\n' ] && [ "${rest: -1}" = $'\n' ] ||
        fail "$name: no reply to turn 2 (after turn 1: '$rest')"
    printf '%s: turn 1 "%s" (= lgpu run), turn 2 "%s"\n' "$name" "$reply1" "${rest%$'\n'}"

    # no input at all: nothing on stdout, exit 0
    run_lgpu "$dev" "" chat -m "$MODEL" "${GREEDY[@]}"
    [ "$rc" = 0 ] && [ -z "$out" ] || fail "$name: empty stdin: exit $rc, stdout '$out'"
}

check_device cpu
check_device ""

# no -m: the model built into liblgpu, the same file, said on stderr
run_lgpu cpu "Hello there" chat -m "$MODEL" "${GREEDY[@]}"
with_m=$out
run_lgpu cpu "Hello there" chat "${GREEDY[@]}"
[ "$rc" = 0 ] || fail "lgpu chat without -m: exit $rc"
grep -qF "no -m given: using the embedded stories260K model" "$work/err" || fail "lgpu chat without -m: no notice"
[ -n "$out" ] && [ "$out" = "$with_m" ] || fail "lgpu chat without -m: '$out', with -m: '$with_m'"

# usage errors: exit 2 and a message naming the flag; failures at load: exit 1
expect_error() { # WANT_RC MESSAGE ARGS...
    local want=$1 msg=$2
    shift 2
    run_lgpu cpu "" chat "$@"
    [ "$rc" = "$want" ] || fail "lgpu chat $*: exit $rc, want $want"
    grep -qF -- "$msg" "$work/err" || fail "lgpu chat $*: stderr lacks '$msg'"
}
expect_error 2 "unknown option '--bogus'" -m "$MODEL" --bogus
expect_error 2 "unknown option '-p'" -m "$MODEL" -p hi # a `run` flag
expect_error 2 "bad value 'hot' for --temp" -m "$MODEL" --temp hot
expect_error 2 "--top-k needs a value" -m "$MODEL" --top-k
expect_error 2 "unknown --template 'nosuch'" -m "$MODEL" --template nosuch
expect_error 1 "cannot load $work/missing.gguf" -m "$work/missing.gguf"
run_lgpu cpu "" chat --help
[ "$rc" = 0 ] && grep -q -- '--template' <<<"$out" || fail "lgpu chat --help: exit $rc"
echo "ok"
