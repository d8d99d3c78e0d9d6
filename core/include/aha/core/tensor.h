// Small tensor helpers: row-major Eigen maps over raw buffers, and the three GEMM shapes of a
// linear layer (forward, input gradient, weight gradient) split across TBB workers.
// Activations are row-major [n_rows, n_cols]; a Linear weight is [n_out, n_in] as in PyTorch.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace aha {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatMap = Eigen::Map<Mat<T>>;
template <typename T>
using CMatMap = Eigen::Map<const Mat<T>>;
template <typename T>
using VecMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <typename T>
using CVecMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

// Strided view: rows of `cols` values starting every `stride` values (a column slice).
template <typename T>
using StridedMap = Eigen::Map<Mat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using CStridedMap = Eigen::Map<const Mat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// y[n, out] (+)= x[n, in] * w[out, in]^T (+ b[out]); accumulate adds into y.
template <typename T>
void gemm_xwt(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in, int64_t out,
              bool accumulate = false);

// dx[n, in] += dy[n, out] * w[out, in]; without accumulate dx is written, not read (a gradient
// whose first contribution this is needs no zeroing first).
template <typename T>
void gemm_dyw(const T* dy, const T* w, T* dx, int64_t n, int64_t in, int64_t out,
              bool accumulate = true);

// dw[out, in] += dy[n, out]^T * x[n, in]; db[out] += column sums of dy (when db != nullptr).
template <typename T>
void gemm_dytx(const T* dy, const T* x, T* dw, T* db, int64_t n, int64_t in, int64_t out);

// f(), one task of a loop of `tasks` (a MoE layer's experts). Where the loop alone feeds this
// machine's cores (twice as many tasks as cores), the three products above run in f as one BLAS
// call each: a grid of tiles packs each operand once per tile row or column, much of a product's
// time at the experts' sizes. Like the grid, the choice follows from the call site, the sizes
// and the machine, never the thread count, so the bits stay the same for any thread count.
// Isolated: while f waits on a nested loop, this thread runs only f's own tasks, never another
// product that wants its grid.
void gemms_of_loop_task(int64_t tasks, const std::function<void()>& f);

// The kernel behind the three above: "openblas" or "eigen" (for benchmark output).
const char* gemm_backend();

// OpenBLAS's kernel family in use ("SkylakeX", "Haswell", ...), or "eigen" without OpenBLAS.
std::string gemm_blas_core();

}  // namespace aha

namespace aha {

// y[n, out] = x[n, in] * w[out, in]^T (+ b) where every output element is computed in one fixed
// order: the result of a row does not depend on how many other rows are in the batch or on the
// thread count. The decode path uses it so sampling is reproducible for any batch mix. In float,
// each output is one in-order chain of multiply-adds over k (fused where the build has FMA), then
// + b (gemm_xwt_lanes); in double, the dot product of dot_stable.
template <typename T>
void gemm_xwt_rowstable(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in,
                        int64_t out);

// The float form of gemm_xwt_rowstable: the outputs in SIMD lanes over a k-major copy of w
// (kept while a WeightCache lives, weight_cache.h).
void gemm_xwt_lanes(const float* x, const float* w, const float* b, float* y, int64_t n,
                    int64_t in, int64_t out);

// gemm_xwt_lanes's panels of w [out, in] made once for a caller that takes several products
// from them (lanes_panel_floats(in, out) floats at wp), and its product (no bias) on the calling
// thread over the first `out` rows of such a w (any prefix of the packed rows), rows of x every
// ldx and of y every ldy values: gemm_xwt_lanes's bits. Attention's scores take each query
// tile's causal keys alone. Packing may fill a column range: rows of w every ldw values (-1: in)
// into values [col0, col0 + in) of panels wp_in deep (-1: in), a key assembled from two parts.
int64_t lanes_panel_floats(int64_t in, int64_t out);
void pack_lanes_panels(const float* w, int64_t in, int64_t out, float* wp, int64_t ldw = -1,
                       int64_t wp_in = -1, int64_t col0 = 0);
void gemm_xwt_lanes_packed(const float* x, int64_t ldx, const float* wp, float* y, int64_t n,
                           int64_t in, int64_t out, int64_t ldy);

// A batch-invariant dot-product GEMM for attention's products (scores against the cache, the
// absorbed projections), on the calling thread only (callers are inside a parallel loop); rows of
// x, w and y every ldx, ldw and ldy values (-1: packed). Each output is dot_stable of its row and
// column.
template <typename T>
void gemm_xwt_rowstable_serial(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in,
                               int64_t out, int64_t ldx = -1, int64_t ldw = -1, int64_t ldy = -1);

// The same with each row of w holding its first `packed` values (a multiple of 32) as bf16, then
// its other in - packed values as floats, rows ldw floats apart: the decode cache's rows under
// bf16. The bf16 go in blocks of 32 as 16 floats, float l of a block holding value l in its low
// half and value l + 16 in its high half (pack_bf16_blocks). Each output has the bits
// gemm_xwt_rowstable_serial gives over the widened rows.
void gemm_xwt_rowstable_serial_packed(const float* x, const float* w, int64_t packed, float* y,
                                      int64_t n, int64_t in, int64_t out, int64_t ldx,
                                      int64_t ldw, int64_t ldy);

// A dot product in a fixed order: 16 lanes over k, one reduction tree, the k tail in order.
template <typename T>
T dot_stable(const T* a, const T* b, int64_t n);

// y[n, out] = x[n, k] * w[k, out], each output summed over k in order (one multiply-add per
// term): a row's result does not depend on the other rows. Rows of w, x and y every ldw, ldx
// and ldy values (-1: packed). Serial (attention weights times cached values, inside a parallel
// loop).
template <typename T>
void gemm_xw_seq(const T* x, const T* w, T* y, int64_t n, int64_t k, int64_t out, int64_t ldw,
                 int64_t ldx = -1, int64_t ldy = -1);
// The same over rows of w holding `out` bf16 values (a multiple of 32) in those blocks, ldw
// floats apart: each output has gemm_xw_seq's bits over the widened rows.
void gemm_xw_seq_packed(const float* x, const float* w, float* y, int64_t n, int64_t k,
                        int64_t out, int64_t ldw, int64_t ldx = -1, int64_t ldy = -1);

// n values (a multiple of 32) rounded to bf16 into n / 2 floats in the blocks above, and back.
void pack_bf16_blocks(const float* x, int64_t n, float* packed);
void unpack_bf16_blocks(const float* packed, int64_t n, float* x);

}  // namespace aha
