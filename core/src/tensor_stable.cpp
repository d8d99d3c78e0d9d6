// Batch-invariant GEMMs for the decode path.
//
// gemm_xwt_rowstable: each output is a dot product accumulated in 16 fixed SIMD lanes in k order
// (lane l holds k = l, l + 16, ...), reduced by one fixed tree (lane i + lane i+8, then +4, +2,
// +1), then the k tail added in order. Tiles of 4x4, 2x8 or 1x16 outputs share loads, and their
// 16 accumulators are reduced together by a transpose-and-add whose pairing is exactly that tree,
// so an output's value does not depend on the tile it falls in, on the other rows of the batch,
// on the split into tasks or on the thread count.
//
// gemm_xw_seq: y = x w with each output summed over k in order, one fused multiply-add per term.
#include <tbb/blocked_range.h>
#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstring>

#include "aha/core/tensor.h"

#include "aha/core/gemm_bf16.h"

namespace aha {

namespace {

typedef float V16 __attribute__((vector_size(64)));
typedef double V8d __attribute__((vector_size(64)));

template <typename V>
inline V loadv(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// ---- float: 16 lanes ----

// The four levels of the reduction tree, each on a pair of vectors. Level 1 leaves a's lane sums
// i + (i+8) in lanes 0..7 and b's in 8..15; the later levels halve the partials per output again.
inline V16 level1(V16 a, V16 b) {
  return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
         __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30,
                                 31);
}
inline V16 level2(V16 a, V16 b) {
  return __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
         __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
}
inline V16 level3(V16 a, V16 b) {
  return __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) +
         __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
}
inline V16 level4(V16 a, V16 b) {
  return __builtin_shufflevector(a, b, 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30) +
         __builtin_shufflevector(a, b, 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31);
}

// Reduces 16 accumulators at once: lane m of the result is the tree sum of a[m / 4 + 4 * (m % 4)].
inline V16 reduce16(const V16* a) {
  V16 b[8], c[4], d[2];
  for (int i = 0; i < 8; ++i) b[i] = level1(a[2 * i], a[2 * i + 1]);
  for (int i = 0; i < 4; ++i) c[i] = level2(b[2 * i], b[2 * i + 1]);
  for (int i = 0; i < 2; ++i) d[i] = level3(c[2 * i], c[2 * i + 1]);
  return level4(d[0], d[1]);
}

// The same tree for one accumulator.
inline float reduce1(V16 v) {
  float l[16];
  std::memcpy(l, &v, sizeof(v));
  for (int w = 8; w >= 1; w /= 2) {
    for (int i = 0; i < w; ++i) l[i] += l[i + w];
  }
  return l[0];
}

inline float tail_dot(float s, const float* a, const float* b, int64_t k0, int64_t in) {
  for (int64_t k = k0; k < in; ++k) s += a[k] * b[k];
  return s;
}

// A cursor over cache lines to fetch ahead of use (the next weight panel while the tiles multiply
// the current one), one line per 16-wide k step. Fetching changes no value.
struct Prefetch {
  const char* next = nullptr;
  const char* end = nullptr;
};

// An R x C tile (R * C = 16) of outputs: rows xr[0..R), weight rows wr[0..C). out[r * C + c].
// kAhead: also advance pf by a line per k step, into L2 (L1 holds this panel and rows of x).
template <int R, int C, bool kAhead = false>
inline void tile16(const float* const* xr, const float* const* wr, int64_t in, float* out,
                   Prefetch* pf = nullptr) {
  static_assert(R * C == 16);
  V16 acc[16] = {};
  // The cursor in registers: through the pointer it would be loaded and stored every step.
  const char* next = kAhead ? pf->next : nullptr;
  const char* const end = kAhead ? pf->end : nullptr;
  int64_t k = 0;
  for (; k + 16 <= in; k += 16) {
    if (kAhead && next < end) {
      __builtin_prefetch(next, 0, 2);
      next += 64;
    }
    V16 xv[R], wv[C];
    for (int r = 0; r < R; ++r) xv[r] = loadv<V16>(xr[r] + k);
    for (int c = 0; c < C; ++c) wv[c] = loadv<V16>(wr[c] + k);
    // Keep every operand in a register: otherwise GCC folds the loads into the multiply-adds
    // and issues R * C loads per step instead of R + C (load ports, not FMAs, then bound it).
#if defined(__AVX512F__)
    for (int r = 0; r < R; ++r) asm("" : "+v"(xv[r]));
    for (int c = 0; c < C; ++c) asm("" : "+v"(wv[c]));
#endif
    // Output m = r * C + c lives in accumulator m / 4 + 4 * (m % 4), so that reduce16 returns
    // the outputs in row-major order.
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) {
        const int m = r * C + c;
        acc[m / 4 + 4 * (m % 4)] += xv[r] * wv[c];
      }
    }
  }
  if (kAhead) pf->next = next;
  V16 s = reduce16(acc);
  std::memcpy(out, &s, sizeof(s));
  if (k < in) {
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) out[r * C + c] = tail_dot(out[r * C + c], xr[r], wr[c], k, in);
    }
  }
}

float dot_f32(const float* a, const float* b, int64_t in) {
  V16 acc = {};
  int64_t k = 0;
  for (; k + 16 <= in; k += 16) acc += loadv<V16>(a + k) * loadv<V16>(b + k);
  return tail_dot(reduce1(acc), a, b, k, in);
}

// One GEMM's operands: rows of x, w and y every ldx, ldw and ldy values.
template <typename T>
struct Operands {
  const T* x;
  const T* w;
  const T* b;
  T* y;
  int64_t n, in, out, ldx, ldw, ldy;
};

// Rows [i0, i1) by columns [j0, j1) of y; every row and column index is clamped into the matrix,
// so tail tiles recompute valid outputs instead of reading past the end.
template <int R, int C, bool kAhead = false>
void tiles_f32(const Operands<float>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
               Prefetch pf = {}) {
  for (int64_t i = i0; i < i1; i += R) {
    const int64_t ni = std::min<int64_t>(R, i1 - i);
    const float* xr[R];
    for (int q = 0; q < R; ++q) xr[q] = g.x + std::min<int64_t>(i + q, g.n - 1) * g.ldx;
    for (int64_t j = j0; j < j1; j += C) {
      const int64_t nj = std::min<int64_t>(C, j1 - j);
      const float* wr[C];
      for (int q = 0; q < C; ++q) wr[q] = g.w + std::min<int64_t>(j + q, g.out - 1) * g.ldw;
      float res[16];
      tile16<R, C, kAhead>(xr, wr, g.in, res, &pf);
      for (int64_t a = 0; a < ni; ++a) {
        float* yr = g.y + (i + a) * g.ldy + j;
        if (g.b != nullptr) {
          for (int64_t c = 0; c < nj; ++c) yr[c] = res[a * C + c] + g.b[j + c];
        } else {
          for (int64_t c = 0; c < nj; ++c) yr[c] = res[a * C + c];
        }
      }
    }
  }
}

// Any block of rows: 4-row tiles, then the 1-3 leftover rows in 2x8 and 1x16 tiles.
void block(const Operands<float>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const int64_t i4 = i0 + (i1 - i0) / 4 * 4;
  if (i4 > i0) tiles_f32<4, 4>(g, i0, i4, j0, j1);
  int64_t i = i4;
  if (i1 - i >= 2) {
    tiles_f32<2, 8>(g, i, i + 2, j0, j1);
    i += 2;
  }
  if (i < i1) tiles_f32<1, 16>(g, i, i1, j0, j1);
}

// ---- double: the original 8-lane form (tests and tools only) ----

inline double reduce_d(V8d v) {
  double l[8];
  std::memcpy(l, &v, sizeof(v));
  for (int w = 4; w >= 1; w /= 2) {
    for (int i = 0; i < w; ++i) l[i] += l[i + w];
  }
  return l[0];
}

double dot_f64(const double* a, const double* b, int64_t in) {
  V8d acc = {};
  int64_t k = 0;
  for (; k + 8 <= in; k += 8) acc += loadv<V8d>(a + k) * loadv<V8d>(b + k);
  double s = reduce_d(acc);
  for (; k < in; ++k) s += a[k] * b[k];
  return s;
}

void block(const Operands<double>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t j = j0; j < j1; ++j) {
      g.y[i * g.ldy + j] =
          dot_f64(g.x + i * g.ldx, g.w + j * g.ldw, g.in) + (g.b != nullptr ? g.b[j] : 0.0);
    }
  }
}

// Multiply-adds per task: below this a GEMM runs on the calling thread.
constexpr int64_t kTaskMacs = int64_t{1} << 16;

// Rows of a task up to which its 4x4 tiles prefetch the next weight panel.
constexpr int64_t kPrefetchRows = 64;

// The parallel split: blocks of row_block rows by col_block columns, numbered row block first so
// that consecutive tasks share the block's rows of x (kept in L2) while panels of weight rows pass.
// Inside a block, col_step columns at a time run over its 4-row tiles: their weight rows stay in
// L1 while the rows of x stream from L2. The 1-3 rows left over go through block's narrow tiles.
// Neither the split nor the order changes a value (see the top of the file). Against the earlier
// split (blocked_range2d of 16-row tasks) 1.11x geomean on one core at the decode and prefill
// shapes, up to 1.3x at 1,024 rows (bench/rowstable_ab/run.sh; docs/performance.md).
struct Grid {
  int64_t n, out, row_block, col_block, col_step;
  int64_t n_col_blocks() const { return (out + col_block - 1) / col_block; }
  int64_t n_tasks() const { return (n + row_block - 1) / row_block * n_col_blocks(); }
  void run(const Operands<float>& g, int64_t t) const {
    const int64_t i0 = t / n_col_blocks() * row_block, j0 = t % n_col_blocks() * col_block;
    const int64_t i1 = std::min(n, i0 + row_block), j1 = std::min(out, j0 + col_block);
    const int64_t i4 = i0 + (i1 - i0) / 4 * 4;
    if (i4 > i0) {
      // Few rows (decode) reuse a panel a few times only, so fetch the next panel meanwhile:
      // this task's next one, or the first of the next task, which this thread runs next unless
      // another steals it. Many rows (prefill) hide the first touch behind their reuse.
      const char* w = reinterpret_cast<const char*>(g.w);
      for (int64_t j = j0; j < j1; j += col_step) {
        const int64_t je = std::min(j1, j + col_step);
        if (i4 - i0 <= kPrefetchRows) {
          const int64_t jn = std::min(j + col_step, out), jn_end = std::min(jn + col_step, out);
          tiles_f32<4, 4, true>(g, i0, i4, j, je, {w + jn * g.ldw * 4, w + jn_end * g.ldw * 4});
        } else {
          tiles_f32<4, 4>(g, i0, i4, j, je);
        }
      }
    }
    if (i4 < i1) block(g, i4, i1, j0, j1);
  }
  void run(const Operands<double>& g, int64_t t) const {
    const int64_t i0 = t / n_col_blocks() * row_block, j0 = t % n_col_blocks() * col_block;
    block(g, i0, std::min(n, i0 + row_block), j0, std::min(out, j0 + col_block));
  }
};

// Sizes in bytes: the rows of x a task keeps in L2, and the weight rows a panel keeps in L1.
constexpr int64_t kXBlockBytes = int64_t{256} << 10;
constexpr int64_t kWPanelBytes = int64_t{24} << 10;
// Most rows per task, so that a long prefill still splits into many tasks.
constexpr int64_t kMaxRowBlock = 256;
// Fewest tasks a parallel GEMM is cut into, so that both cores get work at one row.
constexpr int64_t kMinTasks = 4;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

Grid make_grid(int64_t n, int64_t in, int64_t out) {
  const int64_t row_bytes = 4 * std::max<int64_t>(in, 1);
  Grid gr{n, out, 0, 0, 0};
  gr.row_block =
      std::min(n, std::max<int64_t>(4, std::min(kMaxRowBlock, kXBlockBytes / row_bytes) / 4 * 4));
  // As many weight rows per panel as fit, in whole 16-column steps where there are 16 or more: a
  // narrow k (the absorbed attention's 32) then keeps x's 4-row tile in L1 across a wide panel.
  const int64_t fit = kWPanelBytes / row_bytes;
  gr.col_step =
      fit >= 16 ? std::min<int64_t>(fit, 256) / 16 * 16 : std::max<int64_t>(4, fit / 4 * 4);
  // Columns in multiples of 16, so the 2x8 and 1x16 tiles of leftover rows are never cut short at a
  // task's edge (a cut tile still computes all 16 outputs); at least one panel per task.
  gr.col_block = round_up(
      std::max({int64_t{16}, gr.col_step, 4 * kTaskMacs / (gr.row_block * row_bytes / 4)}), 16);
  const int64_t row_blocks = (n + gr.row_block - 1) / gr.row_block;
  const int64_t cols_wanted = (kMinTasks + row_blocks - 1) / row_blocks;
  gr.col_block = std::min(
      gr.col_block, round_up(std::max<int64_t>(16, (out + cols_wanted - 1) / cols_wanted), 16));
  return gr;
}

}  // namespace

template <typename T>
T dot_stable(const T* a, const T* b, int64_t n) {
  if constexpr (sizeof(T) == 4) {
    return dot_f32(a, b, n);
  } else {
    return dot_f64(a, b, n);
  }
}

template <typename T>
void gemm_xwt_rowstable_serial(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in,
                               int64_t out, int64_t ldx, int64_t ldw, int64_t ldy) {
  if (n <= 0 || out <= 0) return;
  const Operands<T> g{
      x, w, b, y, n, in, out, ldx < 0 ? in : ldx, ldw < 0 ? in : ldw, ldy < 0 ? out : ldy};
  block(g, 0, n, 0, out);
}

template <typename T>
void gemm_xwt_rowstable(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in,
                        int64_t out) {
  if (n <= 0 || out <= 0) return;
  // Under `precision: bf16` the weight products of decode use the kernel training uses: its
  // outputs are batch-invariant too, and sampler and trainer then compute the same logits.
  if constexpr (sizeof(T) == 4) {
    if (matmul_precision() == MatmulPrecision::bf16) {
      gemm_bf16_weight(n, out, in, x, in, w, y, out, false, b);
      return;
    }
  }
  const Operands<T> g{x, w, b, y, n, in, out, in, in, out};
  const int64_t macs = n * std::max<int64_t>(in, 1) * out;
  if (macs < 2 * kTaskMacs) {
    block(g, 0, n, 0, out);
    return;
  }
  if (4 * 4 * std::max<int64_t>(in, 1) > kWPanelBytes) {
    // Not even four weight rows fit in L1. The grid then only streams the whole weight once per
    // row block (0.72-0.91x at in = 4864, also with 16-row blocks); the recursive 2D split of
    // 16-row tasks revisits cached blocks of both operands. Any split gives the same values.
    const int64_t row_grain = std::min<int64_t>(n, 16);
    const int64_t col_grain = std::max<int64_t>(16, round_up(kTaskMacs / (row_grain * in), 16));
    tbb::parallel_for(
        tbb::blocked_range2d<int64_t>(0, n, row_grain, 0, out, col_grain),
        [&](const tbb::blocked_range2d<int64_t>& r) {
          block(g, r.rows().begin(), r.rows().end(), r.cols().begin(), r.cols().end());
        },
        tbb::simple_partitioner());
    return;
  }
  const Grid grid = make_grid(n, in, out);
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, grid.n_tasks(), 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t t = r.begin(); t < r.end(); ++t) grid.run(g, t);
      },
      tbb::simple_partitioner());
}

namespace {

// R rows by NV vectors of columns of y = x w, each output an in-order chain over k.
template <typename T, int R, int NV>
void xw_tile(const T* x, const T* w, T* y, int64_t k, int64_t ldx, int64_t ldw, int64_t ldy) {
  typedef T V __attribute__((vector_size(64)));
  constexpr int kL = 64 / sizeof(T);
  V acc[R][NV] = {};
  for (int64_t t = 0; t < k; ++t) {
    V wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = loadv<V>(w + t * ldw + v * kL);
    for (int r = 0; r < R; ++r) {
      const T s = x[r * ldx + t];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * wv[v];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) std::memcpy(y + r * ldy + v * kL, &acc[r][v], sizeof(V));
  }
}

template <typename T, int R>
void xw_rows(const T* x, const T* w, T* y, int64_t k, int64_t out, int64_t ldx, int64_t ldw,
             int64_t ldy) {
  constexpr int kL = 64 / sizeof(T);
  int64_t j = 0;
  for (; j + 2 * kL <= out; j += 2 * kL) xw_tile<T, R, 2>(x, w + j, y + j, k, ldx, ldw, ldy);
  for (; j + kL <= out; j += kL) xw_tile<T, R, 1>(x, w + j, y + j, k, ldx, ldw, ldy);
  for (; j < out; ++j) {
    for (int r = 0; r < R; ++r) {
      T s = 0;
      for (int64_t t = 0; t < k; ++t) s += x[r * ldx + t] * w[t * ldw + j];
      y[r * ldy + j] = s;
    }
  }
}

}  // namespace

template <typename T>
void gemm_xw_seq(const T* x, const T* w, T* y, int64_t n, int64_t k, int64_t out, int64_t ldw,
                 int64_t ldx, int64_t ldy) {
  if (ldx < 0) ldx = k;
  if (ldy < 0) ldy = out;
  // Blocks of 8 rows share each loaded w vector; the leftover rows go 4, 2, 1 at a time.
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) xw_rows<T, 8>(x + i * ldx, w, y + i * ldy, k, out, ldx, ldw, ldy);
  if (n - i >= 4) {
    xw_rows<T, 4>(x + i * ldx, w, y + i * ldy, k, out, ldx, ldw, ldy);
    i += 4;
  }
  if (n - i >= 2) {
    xw_rows<T, 2>(x + i * ldx, w, y + i * ldy, k, out, ldx, ldw, ldy);
    i += 2;
  }
  if (i < n) xw_rows<T, 1>(x + i * ldx, w, y + i * ldy, k, out, ldx, ldw, ldy);
}

template void gemm_xwt_rowstable<float>(const float*, const float*, const float*, float*, int64_t,
                                        int64_t, int64_t);
template void gemm_xwt_rowstable<double>(const double*, const double*, const double*, double*,
                                         int64_t, int64_t, int64_t);
template void gemm_xwt_rowstable_serial<float>(const float*, const float*, const float*, float*,
                                               int64_t, int64_t, int64_t, int64_t, int64_t,
                                               int64_t);
template void gemm_xwt_rowstable_serial<double>(const double*, const double*, const double*,
                                                double*, int64_t, int64_t, int64_t, int64_t,
                                                int64_t, int64_t);
template void gemm_xw_seq<float>(const float*, const float*, float*, int64_t, int64_t, int64_t,
                                 int64_t, int64_t, int64_t);
template void gemm_xw_seq<double>(const double*, const double*, double*, int64_t, int64_t, int64_t,
                                  int64_t, int64_t, int64_t);
template float dot_stable<float>(const float*, const float*, int64_t);
template double dot_stable<double>(const double*, const double*, int64_t);

}  // namespace aha
