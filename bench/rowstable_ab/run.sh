#!/bin/bash
# Paired A/B of the batch-invariant GEMM (gemm_xwt_rowstable): the kernel at git revision REV
# against the working tree's and one OpenBLAS sgemm call, in one process, interleaved, with a
# bitwise comparison of the two kernels' outputs. Compiled with the build directory's own flags.
#   bash bench/rowstable_ab/run.sh BUILD_DIR REV [THREADS [SHAPE_INDEX [ROWS]]]
# AB_MAIN=bench/rowstable_ab/moe_ab.cpp runs the routed experts' decode phase instead (its own
# arguments after REV: THREADS LAYERS TOKENS D_MODEL INTER ROUNDS, see that file);
# AB_MAIN=bench/rowstable_ab/lanes_ab.cpp a measured alternative kernel (IN OUT N_WEIGHTS).
set -euo pipefail
build=$1 rev=$2
shift 2
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ninja -C "$build" -t commands aha_core >"$work/commands"
cmd=$(grep -m1 'src/tensor_stable.cpp' "$work/commands")
flags=$(echo "$cmd" | sed -e 's/^[^ ]* //' -e 's/ -MD//; s/ -M[TF] [^ ]*//g; s/ -o [^ ]*//; s/ -c [^ ]*//')
git -C "$root" show "$rev:core/src/tensor_stable.cpp" |
  sed 's/gemm_xwt_rowstable/old_gemm_xwt_rowstable/g; s/gemm_xw_seq/old_gemm_xw_seq/g; s/dot_stable/old_dot_stable/g' \
    >"$work/old.cpp"
# shellcheck disable=SC2086
c++ $flags -c "$work/old.cpp" -o "$work/old.o"
# shellcheck disable=SC2086
c++ $flags -c "$root/core/src/tensor_stable.cpp" -o "$work/new.o"
# shellcheck disable=SC2086
c++ $flags -c "$root/${AB_MAIN:-bench/rowstable_ab/ab.cpp}" -o "$work/ab.o"
blas=$(grep -m1 '^AHA_OPENBLAS_LIB:' "$build/CMakeCache.txt" | cut -d= -f2)
c++ "$work/ab.o" "$work/old.o" "$work/new.o" "$build/core/libaha_core.a" "$blas" -ltbb -lfmt -lspdlog \
  -Wl,-rpath,"$(dirname "$blas")" -o "$work/ab"
"$work/ab" "$@"
