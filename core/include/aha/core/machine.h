// What the machine offers beyond aha's own kernels, for benchmarks: the linked BLAS called
// directly on its own threads (the reference aha's tiles are measured against), and the CPU
// features benchmarks print.
#pragma once

#include <cstdint>

namespace aha {

// C[m, n] = op(A)[m, k] op(B)[k, n] + beta C (row-major, leading dimensions) as one call of the
// BLAS aha links, on that library's own `threads` threads: the reference `aha bench gemm
// --shapes model` measures the tiles against. Not bit-for-bit across thread counts, and its
// threads spin a while after the call: benchmarks only. False when aha has no BLAS (Eigen).
bool gemm_blas_direct(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                      int threads);

// True when the CPU has AMX tiles with bf16 (Intel Sapphire Rapids and later), checked at run
// time. The bf16 GEMM then runs on them by default (bf16_kernel() in gemm_bf16.h says which
// kernel runs; Linux must also grant the tile state, which it checks itself).
bool cpu_has_amx_bf16();

}  // namespace aha
