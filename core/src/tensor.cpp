// Parallel GEMM shapes of a linear layer. TBB splits the output into a fixed number of tiles
// chosen from the sizes alone (never from thread timing, so runs repeat bit for bit for any
// thread count); each tile is one single-threaded BLAS call: OpenBLAS (Debian's pthread build
// set to one thread, run-time CPU dispatch) when aha is built with it, Eigen otherwise. One
// single-threaded call per tile keeps TBB the only thread pool.
#include "aha/core/tensor.h"

#include "aha/core/gemm_bf16.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <type_traits>

#ifdef AHA_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace aha {

namespace {

// Tiles of at least ~32 MFLOP and whole multiples of 16 rows: a BLAS call amortises its
// packing of the shared operand only over enough rows, and 2-32 tiles keep every core busy.
int64_t tile_rows(int64_t n_rows, int64_t flops_per_row) {
  constexpr int64_t kMinTileFlops = int64_t{32} << 20, kMaxTiles = 32;
  int64_t rows = std::max<int64_t>(1, kMinTileFlops / std::max<int64_t>(1, flops_per_row));
  rows = std::max(rows, (n_rows + kMaxTiles - 1) / kMaxTiles);
  // At least 4 tiles when there are rows enough: 2-4 cores stay busy on mid-size products.
  rows = std::min(rows, std::max<int64_t>(16, (n_rows + 3) / 4));
  rows = (rows + 15) / 16 * 16;
  return std::min(rows, std::max<int64_t>(n_rows, 1));
}

#ifdef AHA_WITH_OPENBLAS
// One OpenBLAS thread per call: TBB owns the cores, and calls come from several TBB workers
// at once (which the pthread build allows; the serial build shares one buffer and does not).
[[maybe_unused]] const bool kBlasSerial = [] {
  openblas_set_num_threads(1);
  return true;
}();
#endif

// C[m, n] = op(A) * op(B) + beta * C, all row-major with leading dimensions.
template <typename T>
void gemm_tile(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a,
               int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
#ifdef AHA_WITH_OPENBLAS
  const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb),
                beta, c, int(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb),
                beta, c, int(ldc));
  }
#else
  using Stride = Eigen::OuterStride<>;
  using CMap = Eigen::Map<const Mat<T>, Eigen::Unaligned, Stride>;
  CMap A(a, trans_a ? k : m, trans_a ? m : k, Stride(lda));
  CMap B(b, trans_b ? n : k, trans_b ? k : n, Stride(ldb));
  StridedMap<T> C(c, m, n, Stride(ldc));
  if (beta == T(0)) C.setZero();
  if (trans_a && trans_b) {
    C.noalias() += A.transpose() * B.transpose();
  } else if (trans_a) {
    C.noalias() += A.transpose() * B;
  } else if (trans_b) {
    C.noalias() += A * B.transpose();
  } else {
    C.noalias() += A * B;
  }
#endif
}

template <typename F>
void for_tiles(int64_t n, int64_t rows_per_tile, F&& f) {
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, rows_per_tile),
                    [&](const tbb::blocked_range<int64_t>& r) { f(r.begin(), r.end()); },
                    tbb::simple_partitioner());
}

}  // namespace

// Under `precision: bf16` the float products run on the bf16 kernel (fp64 ones never do:
// they are the finite-difference references; callers check T).
static bool bf16_route() { return matmul_precision() == MatmulPrecision::bf16; }

template <typename T>
void gemm_xwt(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in, int64_t out,
              bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_route()) {
      gemm_bf16_weight(n, out, in, x, in, w, y, out, accumulate, b);
      return;
    }
  }
  const T beta = accumulate ? T(1) : T(0);
  // Few rows (decode): split the output columns instead, so every core still works.
  if (n < 16 && out >= 256) {
    for_tiles(out, std::max<int64_t>(64, (out / 16 + 15) / 16 * 16), [&](int64_t c0, int64_t c1) {
      gemm_tile<T>(false, true, n, c1 - c0, in, x, in, w + c0 * in, in, beta, y + c0, out);
      if (b != nullptr) {
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = c0; c < c1; ++c) y[r * out + c] += b[c];
        }
      }
    });
    return;
  }
  for_tiles(n, tile_rows(n, 2 * in * out), [&](int64_t r0, int64_t r1) {
    gemm_tile<T>(false, true, r1 - r0, out, in, x + r0 * in, in, w, in, beta, y + r0 * out, out);
    if (b != nullptr) {
      MatMap<T>(y + r0 * out, r1 - r0, out).rowwise() += CVecMap<T>(b, out).transpose();
    }
  });
}

template <typename T>
void gemm_dyw(const T* dy, const T* w, T* dx, int64_t n, int64_t in, int64_t out) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_route()) {
      gemm_bf16(n, in, out, {dy, out, false}, {w, in, true}, dx, in, true, nullptr);
      return;
    }
  }
  for_tiles(n, tile_rows(n, 2 * in * out), [&](int64_t r0, int64_t r1) {
    gemm_tile<T>(false, false, r1 - r0, in, out, dy + r0 * out, out, w, in, T(1), dx + r0 * in,
                 in);
  });
}

template <typename T>
void gemm_dytx(const T* dy, const T* x, T* dw, T* db, int64_t n, int64_t in, int64_t out) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_route()) {
      gemm_bf16(out, in, n, {dy, out, true}, {x, in, true}, dw, in, true, nullptr);
      if (db != nullptr) {
        VecMap<T>(db, out) += CMatMap<T>(dy, n, out).colwise().sum().transpose();
      }
      return;
    }
  }
  // Split over weight rows: each task owns its slice of dw, no reduction needed.
  for_tiles(out, tile_rows(out, 2 * n * in), [&](int64_t o0, int64_t o1) {
    const int64_t no = o1 - o0;
    gemm_tile<T>(true, false, no, in, n, dy + o0, out, x, in, T(1), dw + o0 * in, in);
    if (db != nullptr) {
      CStridedMap<T> DY(dy + o0, n, no, Eigen::OuterStride<>(out));
      VecMap<T>(db + o0, no) += DY.colwise().sum().transpose();
    }
  });
}

const char* gemm_backend() {
#ifdef AHA_WITH_OPENBLAS
  return "openblas";
#else
  return "eigen";
#endif
}

template void gemm_xwt<float>(const float*, const float*, const float*, float*, int64_t, int64_t,
                              int64_t, bool);
template void gemm_xwt<double>(const double*, const double*, const double*, double*, int64_t,
                               int64_t, int64_t, bool);
template void gemm_dyw<float>(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void gemm_dyw<double>(const double*, const double*, double*, int64_t, int64_t, int64_t);
template void gemm_dytx<float>(const float*, const float*, float*, float*, int64_t, int64_t,
                               int64_t);
template void gemm_dytx<double>(const double*, const double*, double*, double*, int64_t, int64_t,
                                int64_t);

}  // namespace aha
