#!/bin/sh
# test_cli.sh - the sdc command as a user runs it: help and usage errors, `sdc info` (text
# and JSON) on the random checkpoint and on converted files, `sdc convert` with an embedded
# vocabulary, bad input and interruption leaving no file under the output name.
set -u
SDC=${SDC_CLI:?SDC_CLI not set}
[ -n "${SDC_TEST_MODEL:-}" ] && [ -e "$SDC_TEST_MODEL" ] || { echo "SKIP: random checkpoint not available"; exit 77; }
PY=python3; python3 -c 'import json' 2>/dev/null || PY=/usr/bin/python3
T=${SDC_TEST_TMP:-/tmp}/test_cli; rm -rf "$T"; mkdir -p "$T"
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*" >&2; }
expect_rc() { want=$1; shift; "$@" >"$T/out" 2>"$T/err"; rc=$?; [ $rc -eq "$want" ] && ok || bad "$* -> exit $rc, expected $want: $(head -c 300 "$T/err")"; }
json_get() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }

# usage
expect_rc 0 "$SDC" --help
expect_rc 0 "$SDC" --version
expect_rc 2 "$SDC"
expect_rc 2 "$SDC" frobnicate
expect_rc 2 "$SDC" info
expect_rc 2 "$SDC" info --bogus "$SDC_TEST_MODEL"
expect_rc 2 "$SDC" convert "$SDC_TEST_MODEL"
expect_rc 2 "$SDC" convert "$SDC_TEST_MODEL" "$T/x.gguf" --type q3_k
grep -q "q3_k" "$T/err" && ok || bad "bad type not named in the error"
[ ! -e "$T/x.gguf" ] && ok || bad "bad type left an output file"

# info on the source checkpoint
expect_rc 0 "$SDC" info "$SDC_TEST_MODEL"
grep -q "^architecture: *sd1$" "$T/out" && ok || bad "info: architecture line: $(grep architecture "$T/out")"
grep -q "^check: *ok" "$T/out" && ok || bad "info: check line: $(grep check "$T/out")"
grep -q "^tensors: *1145 " "$T/out" && ok || bad "info: tensors line: $(grep tensors: "$T/out")"
"$SDC" info --json "$SDC_TEST_MODEL" > "$T/src.json" && ok || bad "info --json failed"
[ "$(json_get "$T/src.json" "d['components']['unet']['tensors']")" = 686 ] && ok || bad "unet tensor count: $(json_get "$T/src.json" "d['components']['unet']")"
[ "$(json_get "$T/src.json" "d['components']['clip']['tensors']")" = 197 ] && ok || bad "clip tensor count (196 + position_ids)"
[ "$(json_get "$T/src.json" "d['components']['vae']['tensors']")" = 248 ] && ok || bad "vae tensor count"
[ "$(json_get "$T/src.json" "d['alphas_cumprod_type']")" = f32 ] && ok || bad "alphas_cumprod type"

# convert with the published rule and an embedded vocabulary
VOCAB=""
[ -n "${SDC_SHARED:-}" ] && [ -f "$SDC_SHARED/data/bpe_simple_vocab_16e6.txt.gz" ] && VOCAB="$SDC_SHARED/data/bpe_simple_vocab_16e6.txt.gz"
if [ -n "$VOCAB" ]; then
  expect_rc 0 "$SDC" convert "$SDC_TEST_MODEL" "$T/q4.gguf" --type q4_0 --quantize-all --vocab "$VOCAB"
  "$SDC" info --json "$T/q4.gguf" > "$T/q4.json" && ok || bad "info on converted file"
  [ "$(json_get "$T/q4.json" "d['tensors']")" = 1131 ] && ok || bad "converted tensors: $(json_get "$T/q4.json" "d['tensors']")"
  [ "$(json_get "$T/q4.json" "sum(c['types'].get('q4_0',{}).get('tensors',0) for c in d['components'].values())")" = 955 ] && ok || bad "955 quantized expected"
  [ "$(json_get "$T/q4.json" "d['supported']")" = True ] && ok || bad "converted file not supported"
  json_get "$T/q4.json" "d['metadata']['tokenizer.ggml.merges']" | grep -q 48894 && ok || bad "vocabulary not embedded: $(json_get "$T/q4.json" "list(d['metadata'])")"
  [ "$(json_get "$T/q4.json" "d['alphas_cumprod_type']")" = f32 ] && ok || bad "alphas_cumprod kept as f32"
  rm -f "$T/q4.gguf"
else
  echo "note: shared vocabulary not found; --vocab part skipped"
fi

# bad input: one-line error naming the file, exit 1, nothing written
head -c 100000 "$SDC_TEST_MODEL" > "$T/trunc.safetensors"
expect_rc 1 "$SDC" info "$T/trunc.safetensors"
grep -q "trunc.safetensors" "$T/err" && ok || bad "truncated file not named: $(cat "$T/err")"
[ "$(wc -l < "$T/err")" -le 1 ] && ok || bad "error is more than one line"
expect_rc 1 "$SDC" convert "$T/trunc.safetensors" "$T/y.gguf" --type q8_0
[ ! -e "$T/y.gguf" ] && ok || bad "failed convert left y.gguf"
expect_rc 1 "$SDC" convert "$SDC_TEST_MODEL" "$T/no/such/dir/y.gguf" --type q8_0
printf 'GGUF\003\000\000\000' > "$T/tiny.gguf"
expect_rc 1 "$SDC" info "$T/tiny.gguf"
expect_rc 1 "$SDC" info "$T/does-not-exist.gguf"

# interruption: SIGINT mid-way leaves no output and no temporary file
"$SDC" convert "$SDC_TEST_MODEL" "$T/int.gguf" --type q4_0 2>"$T/int.err" &
pid=$!
sleep 2
kill -INT $pid 2>/dev/null
wait $pid; rc=$?
[ $rc -ne 0 ] && ok || bad "interrupted convert exited 0 (finished in under 2 s?)"
[ ! -e "$T/int.gguf" ] && ok || bad "interrupted convert left int.gguf"
ls "$T" | grep -q '\.tmp\.' && bad "temporary files left: $(ls "$T")" || ok

echo "test_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
