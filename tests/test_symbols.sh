#!/bin/sh
# test_symbols.sh - one exported namespace (DESIGN principle 5): every symbol libsdc.a
# defines for other objects starts with sdc_; everything else must be static. (Symbols the
# sanitizers add, __asan*/__odr_asan*/__ubsan*, are not ours and are ignored.)
set -u
lib=${SDC_LIB:?SDC_LIB not set}
command -v nm >/dev/null || { echo "SKIP: nm not found"; exit 77; }
bad=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF==3 && $3 !~ /^sdc_/ && $3 !~ /^__(odr_)?asan/ && $3 !~ /^__(ubsan|sancov)/ {print $3}' | sort -u)
n=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF==3' | wc -l)
if [ -n "$bad" ]; then
  echo "symbols outside the sdc_ namespace:"; echo "$bad"
  echo "test_symbols: 0 passed, 1 failed"; exit 1
fi
echo "test_symbols: $n exported symbols, all sdc_*"
echo "test_symbols: 1 passed, 0 failed"
