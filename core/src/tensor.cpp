// Parallel GEMM shapes of a linear layer. Eigen does the blocked kernel on each tile; TBB splits
// the output into tiles large enough to keep the kernel efficient. simple_partitioner makes the
// tiles a function of the sizes alone (never of thread timing), so runs repeat bit for bit.
#include "aha/core/tensor.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>

namespace aha {

namespace {

// Rows per task: enough work per tile (~1 MFLOP) that scheduling cost stays negligible.
int64_t grain_rows(int64_t n_rows, int64_t work_per_row) {
  int64_t g = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, work_per_row));
  return std::min<int64_t>(std::max<int64_t>(g, 8), std::max<int64_t>(n_rows, 1));
}

}  // namespace

template <typename T>
void gemm_xwt(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in, int64_t out,
              bool accumulate) {
  CMatMap<T> W(w, out, in);
  auto tile_rows = [&](int64_t r0, int64_t r1) {
    CMatMap<T> X(x + r0 * in, r1 - r0, in);
    MatMap<T> Y(y + r0 * out, r1 - r0, out);
    if (accumulate) {
      Y.noalias() += X * W.transpose();
    } else {
      Y.noalias() = X * W.transpose();
    }
    if (b != nullptr) Y.rowwise() += CVecMap<T>(b, out).transpose();
  };
  // Few rows (decode): split the output columns instead, so both cores still work.
  if (n < 16 && out >= 256) {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, out, std::max<int64_t>(64, out / 16)),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        int64_t c0 = r.begin(), nc = r.end() - r.begin();
                        CMatMap<T> X(x, n, in);
                        StridedMap<T> Y(y + c0, n, nc, Eigen::OuterStride<>(out));
                        if (accumulate) {
                          Y.noalias() += X * W.middleRows(c0, nc).transpose();
                        } else {
                          Y.noalias() = X * W.middleRows(c0, nc).transpose();
                        }
                        if (b != nullptr) Y.rowwise() += CVecMap<T>(b + c0, nc).transpose();
                      },
                      tbb::simple_partitioner());
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, grain_rows(n, 2 * in * out)),
                    [&](const tbb::blocked_range<int64_t>& r) { tile_rows(r.begin(), r.end()); },
                    tbb::simple_partitioner());
}

template <typename T>
void gemm_dyw(const T* dy, const T* w, T* dx, int64_t n, int64_t in, int64_t out) {
  CMatMap<T> W(w, out, in);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, grain_rows(n, 2 * in * out)),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      int64_t r0 = r.begin(), nr = r.end() - r.begin();
                      MatMap<T> DX(dx + r0 * in, nr, in);
                      DX.noalias() += CMatMap<T>(dy + r0 * out, nr, out) * W;
                    },
                    tbb::simple_partitioner());
}

template <typename T>
void gemm_dytx(const T* dy, const T* x, T* dw, T* db, int64_t n, int64_t in, int64_t out) {
  CMatMap<T> X(x, n, in);
  // Split over weight rows: each task owns its slice of dw, no reduction needed.
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, out, grain_rows(out, 2 * n * in)),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      int64_t o0 = r.begin(), no = r.end() - r.begin();
                      CStridedMap<T> DY(dy + o0, n, no, Eigen::OuterStride<>(out));
                      MatMap<T> DW(dw + o0 * in, no, in);
                      DW.noalias() += DY.transpose() * X;
                      if (db != nullptr) {
                        VecMap<T>(db + o0, no) += DY.colwise().sum().transpose();
                      }
                    },
                    tbb::simple_partitioner());
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
