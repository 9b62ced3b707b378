#!/bin/sh
# Test fixture: makes the random-weight SD 1.5 checkpoint once per build tree (or reuses the
# file named by SDC_TEST_MODEL_SOURCE, e.g. the one the release build made). Skips (77) when
# ../shared or numpy is missing.
set -u
out="$1"; shared="$2"
[ -s "$out" ] && { echo "reusing $out"; exit 0; }
if [ -n "${SDC_TEST_MODEL_SOURCE:-}" ] && [ -s "$SDC_TEST_MODEL_SOURCE" ]; then
  ln -sf "$SDC_TEST_MODEL_SOURCE" "$out" && { echo "linked $out -> $SDC_TEST_MODEL_SOURCE"; exit 0; }
fi
tool="$shared/tools/make_random_sd15.py"
[ -f "$tool" ] || { echo "SKIP: $tool not found: set SDC_SHARED or put the shared folder next to the source tree"; exit 77; }
py=python3
python3 -c 'import numpy' 2>/dev/null || py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: python3 with numpy is needed (apt-get install python3-numpy)"; exit 77; }
"$py" "$tool" "$out.tmp" --seed 0 --dtype f16 && mv "$out.tmp" "$out"
