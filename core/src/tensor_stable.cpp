// Batch-invariant GEMM: each output is a dot product accumulated in fixed-width SIMD lanes in k
// order and reduced in a fixed tree, so a row's result never depends on its neighbours. Tiles of
// 4 x-rows by 4 w-rows reuse each loaded vector four times, which keeps the kernel near the
// load-port limit rather than memory bound.
#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>

#include <algorithm>

#include "aha/core/tensor.h"

namespace aha {

namespace {

template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  typedef float V __attribute__((vector_size(64)));
  static constexpr int kN = 16;
};
template <>
struct Lanes<double> {
  typedef double V __attribute__((vector_size(64)));
  static constexpr int kN = 8;
};

template <typename T>
inline typename Lanes<T>::V load(const T* p) {
  typename Lanes<T>::V v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
inline T reduce(typename Lanes<T>::V v) {
  constexpr int N = Lanes<T>::kN;
  T l[N];
  __builtin_memcpy(l, &v, sizeof(v));
  for (int w = N / 2; w >= 1; w /= 2) {
    for (int i = 0; i < w; ++i) l[i] += l[i + w];
  }
  return l[0];
}

// Dot products of R x-rows with C w-rows, all in the same lane order.
template <typename T, int R, int C>
inline void tile(const T* const* xr, const T* const* wr, int64_t in, T (*out)[C]) {
  using V = typename Lanes<T>::V;
  constexpr int N = Lanes<T>::kN;
  V acc[R][C] = {};
  int64_t k = 0;
  for (; k + N <= in; k += N) {
    V xv[R], wv[C];
    for (int r = 0; r < R; ++r) xv[r] = load(xr[r] + k);
    for (int c = 0; c < C; ++c) wv[c] = load(wr[c] + k);
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) acc[r][c] += xv[r] * wv[c];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      T s = reduce<T>(acc[r][c]);
      for (int64_t kk = k; kk < in; ++kk) s += xr[r][kk] * wr[c][kk];
      out[r][c] = s;
    }
  }
}

}  // namespace

template <typename T>
T dot_stable(const T* a, const T* b, int64_t n) {
  T out[1][1];
  tile<T, 1, 1>(&a, &b, n, out);
  return out[0][0];
}

template <typename T>
void gemm_xwt_rowstable(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in,
                        int64_t out) {
  constexpr int R = 4, C = 4;
  const int64_t row_grain = 16, col_grain = std::max<int64_t>(16, (out + 15) / 16);
  tbb::parallel_for(
      tbb::blocked_range2d<int64_t>(0, n, row_grain, 0, out, col_grain),
      [&](const tbb::blocked_range2d<int64_t>& r) {
        for (int64_t i = r.rows().begin(); i < r.rows().end(); i += R) {
          const int64_t ni = std::min<int64_t>(R, r.rows().end() - i);
          for (int64_t j = r.cols().begin(); j < r.cols().end(); j += C) {
            const int64_t nj = std::min<int64_t>(C, r.cols().end() - j);
            const T* xr[R];
            const T* wr[C];
            for (int q = 0; q < R; ++q) xr[q] = x + std::min<int64_t>(i + q, n - 1) * in;
            for (int q = 0; q < C; ++q) wr[q] = w + std::min<int64_t>(j + q, out - 1) * in;
            T res[R][C];
            tile<T, R, C>(xr, wr, in, res);
            for (int64_t a = 0; a < ni; ++a) {
              for (int64_t c = 0; c < nj; ++c) {
                y[(i + a) * out + j + c] = res[a][c] + (b != nullptr ? b[j + c] : T(0));
              }
            }
          }
        }
      },
      tbb::simple_partitioner());
}

template void gemm_xwt_rowstable<float>(const float*, const float*, const float*, float*, int64_t,
                                        int64_t, int64_t);
template void gemm_xwt_rowstable<double>(const double*, const double*, const double*, double*,
                                         int64_t, int64_t, int64_t);
template float dot_stable<float>(const float*, const float*, int64_t);
template double dot_stable<double>(const double*, const double*, int64_t);

}  // namespace aha
