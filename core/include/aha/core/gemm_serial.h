// One GEMM on the calling thread, for callers already inside a parallel loop (the training
// attention's per-head products): OpenBLAS with one thread when aha has it, Eigen otherwise.
// Not batch-invariant (the blocking depends on the shape): never for the decode path.
#pragma once

#include <cstdint>

namespace aha {

// C[m, n] = alpha * op(A) * op(B) + beta * C, row-major with leading dimensions; op(A) is
// [m, k] (A stored [k, m] when trans_a), op(B) is [k, n] (B stored [n, k] when trans_b).
// beta == 0 ignores C's old values (NaN included).
template <typename T>
void gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace aha
