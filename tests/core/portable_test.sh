#!/usr/bin/env bash
# The kernels of a build for any x86-64 (-DAHA_NATIVE=OFF), as on a CPU without AVX-512: a
# second build of this tree with the core tests, checked to hold no AVX-512 instruction outside
# the kernels chosen at run time (the bf16 micro-kernels), then run.
#   portable_test.sh SOURCE_DIR BUILD_DIR GENERATOR
set -euo pipefail
src=$1 dir=$2 gen=$3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { cmake -S "$src" -B "$dir" -G "$gen" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAHA_NATIVE=OFF \
         -DAHA_BUILD_BENCH=OFF && cmake --build "$dir" --target aha_core_test; } >"$log" 2>&1; then
  tail -40 "$log"
  echo "error: the build with -DAHA_NATIVE=OFF failed" >&2
  exit 1
fi
test_bin="$dir/tests/aha_core_test"
# Functions that touch zmm registers, other than the run-time dispatched bf16 kernels.
wide=$(objdump -d --no-show-raw-insn -C "$test_bin" |
  awk '/^[0-9a-f]+ <.*>:$/ { f = $0 } /%zmm/ && f !~ /micro_hw/ { print f }' | sort -u)
if [ -n "$wide" ]; then
  echo "error: AVX-512 code outside the run-time dispatched kernels:" >&2
  echo "$wide" | head -20 >&2
  exit 1
fi
"$test_bin"
