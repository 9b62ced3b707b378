#!/bin/sh
# test_generate_cli.sh - `sdc generate` as a user runs it: --help, validation errors (exit 2,
# a clear message, nothing written, no model work), then with the random checkpoint a tiny
# real run whose PNG `sdc info` prints the parameters of, byte-identical reruns, -b numbering,
# and Ctrl-C leaving no file. The real runs skip while a network is not built.
set -u
SDC=${SDC_CLI:?SDC_CLI not set}
[ -n "${SDC_TEST_MODEL:-}" ] && [ -e "$SDC_TEST_MODEL" ] || { echo "SKIP: random checkpoint not available"; exit 77; }
M=$SDC_TEST_MODEL
T=${SDC_TEST_TMP:-/tmp}/test_generate_cli; rm -rf "$T"; mkdir -p "$T/out"
export XDG_CACHE_HOME="$T/cache"
VOCAB=""
[ -n "${SDC_SHARED:-}" ] && [ -f "$SDC_SHARED/data/bpe_simple_vocab_16e6.txt.gz" ] && VOCAB="$SDC_SHARED/data/bpe_simple_vocab_16e6.txt.gz"
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*" >&2; }
run() { "$@" >"$T/stdout" 2>"$T/stderr"; rc=$?; }
expect() { # expect RC PATTERN ARGS...: exit code and a message matching PATTERN on stderr
  want=$1; pat=$2; shift 2
  run "$SDC" "$@"
  [ "$rc" -eq "$want" ] && ok || bad "sdc $* -> exit $rc, expected $want: $(head -c 300 "$T/stderr")"
  grep -q -- "$pat" "$T/stderr" && ok || bad "sdc $*: message lacks '$pat': $(head -c 300 "$T/stderr")"
}
empty_out() { [ -z "$(ls -A "$T/out")" ] && ok || bad "$1: files left: $(ls -A "$T/out")"; }

# help: every flag with its default
run "$SDC" --help
[ "$rc" -eq 0 ] && ok || bad "--help exit $rc"
for f in -m -p -n -o -W -H --steps --cfg-scale -s -b --sampling-method --schedule --rng --clip-skip --vae-tiling \
         -t -v --vocab --schedule-from-file --eta --keep-weights-mapped --int8-linear --bf16; do
  grep -q -- " $f[ ,]" "$T/stdout" && ok || bad "--help does not list $f"
done
for d in "default: 512" "default: 20" "default: 7.0" "default: 42" "default: euler_a" "default: discrete" \
         "default: cuda" "default: output.png"; do
  grep -q "$d" "$T/stdout" && ok || bad "--help lacks '$d'"
done
run "$SDC" generate --help
[ "$rc" -eq 0 ] && grep -q -- "--sampling-method" "$T/stdout" && ok || bad "generate --help"

# validation: exit 2 with a message, before any work, nothing written
O="$T/out/x.png"
expect 2 "width 100: expected a multiple of 8 in \[64, 2048\]" -m "$M" -p x -o "$O" -W 100
expect 2 "width 2056" -m "$M" -p x -o "$O" -W 2056
expect 2 "height 56" -m "$M" -p x -o "$O" -H 56
expect 2 "steps 0: expected 1..1000" -m "$M" -p x -o "$O" --steps 0
expect 2 "steps 1001" -m "$M" -p x -o "$O" --steps 1001
expect 2 "cfg scale -1: expected a number >= 0" -m "$M" -p x -o "$O" --cfg-scale -1
expect 2 "expected one of euler, euler_a, heun" -m "$M" -p x -o "$O" --sampling-method foo
expect 2 "expected one of discrete, karras, exponential, ays, sgm_uniform, simple" -m "$M" -p x -o "$O" --schedule bar
expect 2 "rng 'gpu'" -m "$M" -p x -o "$O" --rng gpu
expect 2 "expected an integer" -m "$M" -p x -o "$O" --steps abc
expect 2 "threads 300: expected 1..256" -m "$M" -p x -o "$O" -t 300
expect 2 "unknown option '--bogus'" -m "$M" -p x -o "$O" --bogus
expect 2 "unknown option '--keep-weights-mapped=1'" -m "$M" -p x -o "$O" --keep-weights-mapped=1
expect 2 "unknown option '--int8-linear=yes'" -m "$M" -p x -o "$O" --int8-linear=yes
expect 2 "unknown option '--bf16=1'" -m "$M" -p x -o "$O" --bf16=1
expect 2 "no model given" -p x -o "$O"
expect 2 "model '$T/none.safetensors'" -m "$T/none.safetensors" -p x -o "$O"
expect 2 "output folder '$T/missing' does not exist" -m "$M" -p x -o "$T/missing/x.png"
expect 2 "is a folder" -m "$M" -p x -o "$T/out"
if [ "$(id -u)" != 0 ]; then
  mkdir -p "$T/ro"; chmod 555 "$T/ro"
  expect 2 "not writable" -m "$M" -p x -o "$T/ro/x.png"
fi
empty_out "validation"
# A1111 display names and aliases are accepted (they fail later only if the build lacks a network)
run "$SDC" -m "$M" -p x -o "$O" --sampling-method "DPM++ 2M" --scheduler Karras --steps 1 -W 64 -H 64 ${VOCAB:+--vocab "$VOCAB"}
[ "$rc" -ne 2 ] && ok || bad "display names rejected: $(cat "$T/stderr")"

if grep -q "this build lacks" "$T/stderr"; then
  echo "note: $(cat "$T/stderr"); real runs skipped"
  echo "test_generate_cli: $pass passed, $fail failed"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
rm -f "$T/out"/*
[ -n "$VOCAB" ] || { echo "SKIP: shared vocabulary not found"; exit 77; }

# a tiny real run; the infotext comes back through sdc info
O="$T/out/cat.png"
run "$SDC" -m "$M" -p "a (cat:1.2), sitting" -n "blurry" -W 64 -H 64 --steps 2 -s 5 -o "$O" --vocab "$VOCAB" -t 2 -v
[ "$rc" -eq 0 ] && [ -s "$O" ] && ok || bad "tiny run: exit $rc: $(tail -c 400 "$T/stderr")"
grep -q "peak RSS" "$T/stderr" && ok || bad "-v: no peak RSS line"
grep -q "text:" "$T/stderr" && grep -q "decode:" "$T/stderr" && ok || bad "-v: no stage timings"
grep -q "step 1/2" "$T/stderr" && bad "progress printed although stderr is not a terminal" || ok
run "$SDC" info "$O"
[ "$rc" -eq 0 ] && ok || bad "sdc info on the PNG: exit $rc $(cat "$T/stderr")"
printf 'a (cat:1.2), sitting\nNegative prompt: blurry\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, Model hash: 238aeeda71, Model: %s, Version: sdc ' \
  "$(basename "$M" .safetensors)" > "$T/want"
head -c "$(wc -c < "$T/want")" "$T/stdout" | cmp -s - "$T/want" && ok || bad "infotext: got [$(cat "$T/stdout")] want [$(cat "$T/want")...]"
[ "$(wc -l < "$T/stdout")" -eq 3 ] && ok || bad "infotext is not 3 lines"
# same command twice, the second keeping every weight page mapped: byte-identical PNG
run "$SDC" -m "$M" -p "a (cat:1.2), sitting" -n "blurry" -W 64 -H 64 --steps 2 -s 5 -o "$T/out/cat2.png" --vocab "$VOCAB" -t 2 \
  --keep-weights-mapped
cmp -s "$O" "$T/out/cat2.png" && ok || bad "default and --keep-weights-mapped runs gave different files"
# --int8-linear, --bf16: logged (on, or the fp32 fallback without VNNI / AMX) and recorded in the infotext
run "$SDC" -m "$M" -p "a (cat:1.2), sitting" -n "blurry" -W 64 -H 64 --steps 1 -s 5 -o "$T/out/i8.png" --vocab "$VOCAB" -t 2 \
  --int8-linear --bf16 -v
[ "$rc" -eq 0 ] && grep -q "int8 linear: " "$T/stderr" && grep -q "bf16: " "$T/stderr" && ok \
  || bad "--int8-linear --bf16 run: exit $rc: $(tail -c 300 "$T/stderr")"
"$SDC" info "$T/out/i8.png" | grep -q ", Int8 linear: True, BF16: True, Version: sdc " && ok \
  || bad "int8/bf16 infotext: $("$SDC" info "$T/out/i8.png")"
"$SDC" info "$O" | grep -q "Int8 linear\|BF16" && bad "fp32 run's infotext mentions int8 or bf16" || ok
# -b 2: out_0.png (seed 5), out_1.png (seed 6), cfg 1 (no unconditional pass), karras
run "$SDC" -m "$M" -p "a dog" -W 64 -H 64 --steps 1 -s 5 -b 2 --cfg-scale 1 --schedule karras -o "$T/out/b.png" --vocab "$VOCAB"
[ "$rc" -eq 0 ] && [ -s "$T/out/b_0.png" ] && [ -s "$T/out/b_1.png" ] && [ ! -e "$T/out/b.png" ] && ok || bad "-b 2 names: $(ls "$T/out")"
"$SDC" info "$T/out/b_1.png" | grep -q "Schedule type: Karras, CFG scale: 1, Seed: 6," && ok || bad "b_1 infotext: $("$SDC" info "$T/out/b_1.png")"
# a %d pattern
run "$SDC" -m "$M" -p "a dog" -W 64 -H 64 --steps 1 -b 2 --cfg-scale 1 -o "$T/out/seq_%03d.png" --vocab "$VOCAB"
[ -s "$T/out/seq_000.png" ] && [ -s "$T/out/seq_001.png" ] && ok || bad "%03d names: $(ls "$T/out")"
# random seed: printed, and the infotext has it
run "$SDC" -m "$M" -p "a dog" -W 64 -H 64 --steps 1 -s -1 --cfg-scale 1 -o "$T/out/r.png" --vocab "$VOCAB"
seed=$(sed -n 's/^sdc: seed \([0-9]*\)$/\1/p' "$T/stderr")
[ -n "$seed" ] && "$SDC" info "$T/out/r.png" | grep -q "Seed: $seed," && ok || bad "random seed not printed/recorded: $(cat "$T/stderr")"
# no temporary files left
ls -A "$T/out" | grep -q tmp && bad "temporary files left: $(ls -A "$T/out")" || ok

# Ctrl-C: stops between steps, exit 130, no file
rm -f "$T/out"/*
"$SDC" -m "$M" -p "a cat" -W 64 -H 64 --steps 1000 -o "$T/out/int.png" --vocab "$VOCAB" -t 1 -v 2>"$T/int.err" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q "text:" "$T/int.err"; do sleep 0.2; i=$((i+1)); done
sleep 1
kill -INT $pid
wait $pid; rc=$?
[ "$rc" -eq 130 ] && ok || bad "Ctrl-C: exit $rc, expected 130: $(tail -c 300 "$T/int.err")"
grep -q "nothing written" "$T/int.err" && ok || bad "Ctrl-C: no message"
empty_out "Ctrl-C"

echo "test_generate_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
