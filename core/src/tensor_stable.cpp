// Batch-invariant products for the decode path's attention (the weight GEMM is tensor_lanes.cpp).
//
// gemm_xwt_rowstable_serial and dot_stable: each output is a dot product accumulated in 16 fixed
// SIMD lanes in k order (lane l holds k = l, l + 16, ...), reduced by one fixed tree (lane i +
// lane i+8, then +4, +2, +1), then the k tail added in order. So is gemm_xwt_rowstable<double>
// (tests and tools). Tiles of 4x4, 2x8 or 1x16 outputs share loads, and their
// 16 accumulators are reduced together by a transpose-and-add whose pairing is exactly that tree,
// so an output's value does not depend on the tile it falls in, on the other rows of the batch,
// on the split into tasks or on the thread count.
//
// gemm_xw_seq: y = x w with each output summed over k in order, one fused multiply-add per term.
#include <tbb/blocked_range.h>
#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "aha/core/error.h"
#include "aha/core/tensor.h"

#include "aha/core/gemm_bf16.h"
#include "bf16_pack.h"

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

// A block of 32 bf16 values stored as 16 floats: float l holds value l in its low half and value
// l + 16 in its high half, so two ALU operations widen them into the two 16-lane vectors of the
// block, in order (a bf16 is the top half of its float: exact).
inline void load_bf16x32(const float* p, V16& first, V16& second) {
  typedef uint32_t U32x16 __attribute__((vector_size(64)));
  U32x16 u;
  std::memcpy(&u, p, sizeof(u));
  const U32x16 lo = u << 16, hi = u & 0xffff0000u;
  std::memcpy(&first, &lo, sizeof(first));
  std::memcpy(&second, &hi, sizeof(second));
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

// An R x C tile (R * C = 16) of outputs: rows xr[0..R), weight rows wr[0..C). out[r * C + c].
// Packed: a weight row's first `packed` values (a multiple of 32) are bf16 in blocks of 32
// (load_bf16x32), widened as loaded, so the outputs are those over the widened rows (a template
// parameter: a run-time test in the loop cost the float form a quarter of its speed).
template <int R, int C, bool Packed>
__attribute__((always_inline)) inline void tile16(const float* const* xr,
                                                  const float* const* wr, int64_t in,
                                                  int64_t packed, float* out) {
  static_assert(R * C == 16);
  V16 acc[16] = {};
  // Step k: the loads of x, then the multiply-adds (the weight vectors given).
  auto step = [&](int64_t k, V16* wv) __attribute__((always_inline)) {
    V16 xv[R];
    for (int r = 0; r < R; ++r) xv[r] = loadv<V16>(xr[r] + k);
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
  };
  // Value k >= packed of a weight row sits at float k - packed / 2.
  const int64_t shift = Packed ? packed / 2 : 0;
  int64_t k = 0;
  if constexpr (Packed) {
    // load_bf16x32's widening, each half made from a load of its own before its step: keeping
    // the loaded block across the first step spilled accumulators of the 8 x 2 tile to the
    // stack (1.1x slower in decode's scores).
    typedef uint32_t U32x16 __attribute__((vector_size(64)));
    for (; k < packed; k += 32) {
      V16 wv[C];
      for (int c = 0; c < C; ++c) {
        const U32x16 lo = loadv<U32x16>(wr[c] + k / 2) << 16;
        std::memcpy(&wv[c], &lo, sizeof(lo));
      }
      step(k, wv);
      for (int c = 0; c < C; ++c) {
        const U32x16 hi = loadv<U32x16>(wr[c] + k / 2) & 0xffff0000u;
        std::memcpy(&wv[c], &hi, sizeof(hi));
      }
      step(k + 16, wv);
    }
  }
  for (; k + 16 <= in; k += 16) {
    V16 wv[C];
    for (int c = 0; c < C; ++c) wv[c] = loadv<V16>(wr[c] + k - shift);
    step(k, wv);
  }
  V16 s = reduce16(acc);
  std::memcpy(out, &s, sizeof(s));
  if (k < in) {
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) {
        out[r * C + c] = tail_dot(out[r * C + c], xr[r] + shift, wr[c], k - shift, in - shift);
      }
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
  int64_t packed = 0;  // w's rows: leading bf16 values (tile16)
};

// Rows [i0, i1) by columns [j0, j1) of y; every row and column index is clamped into the matrix,
// so tail tiles recompute valid outputs instead of reading past the end.
template <int R, int C, bool Packed>
void tiles_f32(const Operands<float>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  for (int64_t i = i0; i < i1; i += R) {
    const int64_t ni = std::min<int64_t>(R, i1 - i);
    const float* xr[R];
    for (int q = 0; q < R; ++q) xr[q] = g.x + std::min<int64_t>(i + q, g.n - 1) * g.ldx;
    for (int64_t j = j0; j < j1; j += C) {
      const int64_t nj = std::min<int64_t>(C, j1 - j);
      const float* wr[C];
      for (int q = 0; q < C; ++q) wr[q] = g.w + std::min<int64_t>(j + q, g.out - 1) * g.ldw;
      // Decode streams each sequence's cache through here once per step: fetch the weight rows
      // two tiles and at least 8 rows ahead, or the short tiles wait on memory (the loads were
      // 60% of this loop). 8x2 tiles two ahead (4 rows) ran 1.1-1.2x slower from memory than
      // 8 rows ahead; 16 or 32 rows ahead were no better than 4.
      constexpr int kAhead = std::max(2 * C, 8);
      const int64_t row_floats = g.in - g.packed / 2;
      for (int q = 0; q < C; ++q) {
        const float* ahead = g.w + std::min<int64_t>(j + kAhead + q, g.out - 1) * g.ldw;
        for (int64_t k = 0; k < row_floats; k += 16) __builtin_prefetch(ahead + k);
      }
      float res[16];
      tile16<R, C, Packed>(xr, wr, g.in, g.packed, res);
      if (g.b == nullptr && ni == R && nj == C) {
        // A whole tile without a bias, a row's C outputs at once: the general copy below, one
        // value and one bias test at a time, took a seventh of decode's scores.
        for (int a = 0; a < R; ++a) {
          std::memcpy(g.y + (i + a) * g.ldy + j, res + a * C, sizeof(float) * C);
        }
        continue;
      }
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

// Any block of rows: 8-row tiles, then 4-row tiles, then the 1-3 leftover rows in 2x8 and 1x16
// tiles. Decode's scores are 8 or more heads against a sequence's cache: 8x2 tiles read each
// cached row once (4x4 tiles read it once per 4 heads) and prefetch half as many lines per output.
template <bool Packed>
void block_f32(const Operands<float>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const int64_t i8 = i0 + (i1 - i0) / 8 * 8;
  if (i8 > i0) tiles_f32<8, 2, Packed>(g, i0, i8, j0, j1);
  const int64_t i4 = i8 + (i1 - i8) / 4 * 4;
  if (i4 > i8) tiles_f32<4, 4, Packed>(g, i8, i4, j0, j1);
  int64_t i = i4;
  if (i1 - i >= 2) {
    tiles_f32<2, 8, Packed>(g, i, i + 2, j0, j1);
    i += 2;
  }
  if (i < i1) tiles_f32<1, 16, Packed>(g, i, i1, j0, j1);
}

void block(const Operands<float>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  block_f32<false>(g, i0, i1, j0, j1);
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
  if constexpr (sizeof(T) == 4) {
    // Under `precision: bf16` the weight products of decode use the kernel training uses: its
    // outputs are batch-invariant too, and sampler and trainer then compute the same logits.
    if (matmul_precision() == MatmulPrecision::bf16) {
      gemm_bf16_weight(n, out, in, x, in, w, y, out, false, b);
    } else {
      gemm_xwt_lanes(x, w, b, y, n, in, out);
    }
  } else {
    const Operands<T> g{x, w, b, y, n, in, out, in, in, out};
    tbb::parallel_for(tbb::blocked_range2d<int64_t>(0, n, 16, 0, out, 64),
                      [&](const tbb::blocked_range2d<int64_t>& r) {
                        block(g, r.rows().begin(), r.rows().end(), r.cols().begin(),
                              r.cols().end());
                      });
  }
}

namespace {

template <typename T>
inline T fmadd1(T a, T b, T acc) {
#if defined(__FMA__) || defined(__AVX512F__)
  return std::fma(a, b, acc);
#else
  return acc + a * b;
#endif
}

// R rows by NV vectors of columns of y = x w, each output an in-order chain over k. Packed
// (float only): w's rows are blocks of 32 bf16 values (load_bf16x32), w at the tile's block.
template <typename T, int R, int NV, bool Packed = false>
void xw_tile(const T* x, const T* w, T* y, int64_t k, int64_t ldx, int64_t ldw, int64_t ldy) {
  typedef T V __attribute__((vector_size(64)));
  typedef T VU __attribute__((vector_size(64), aligned(sizeof(T)), may_alias));
  constexpr int kL = 64 / sizeof(T);
  // Zeroed and stored one vector at a time, never by address, and no loop that may not run:
  // `= {}`, a memcpy from acc and an empty k made the compiler keep acc on the stack, a 1 KB
  // memset and a round trip per tile (a fifth of the tile at decode's 32 to 64 cached rows).
  if (k <= 0) {
    for (int r = 0; r < R; ++r) {
      for (int v = 0; v < NV; ++v) *reinterpret_cast<VU*>(y + r * ldy + v * kL) = V{};
    }
    return;
  }
  V acc[R][NV];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  }
  for (int64_t t = 0; t < k; ++t) {
    V wv[NV];
    if constexpr (Packed) {
      static_assert(NV == 2, "a packed block is 32 columns");
      load_bf16x32(w + t * ldw, wv[0], wv[1]);
    } else {
      for (int v = 0; v < NV; ++v) wv[v] = loadv<V>(w + t * ldw + v * kL);
    }
    for (int r = 0; r < R; ++r) {
      const T s = x[r * ldx + t];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * wv[v];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) *reinterpret_cast<VU*>(y + r * ldy + v * kL) = acc[r][v];
  }
}

// All columns of R rows. Packed: w's rows are blocks of 32 bf16 (out a multiple of 32).
template <typename T, int R, bool Packed>
void xw_rows(const T* x, const T* w, T* y, int64_t k, int64_t out, int64_t ldx, int64_t ldw,
             int64_t ldy) {
  if constexpr (Packed) {
    for (int64_t j = 0; j < out; j += 32) {
      xw_tile<T, R, 2, true>(x, w + j / 2, y + j, k, ldx, ldw, ldy);
    }
    return;
  }
  constexpr int kL = 64 / sizeof(T);
  int64_t j = 0;
  for (; j + 2 * kL <= out; j += 2 * kL) xw_tile<T, R, 2>(x, w + j, y + j, k, ldx, ldw, ldy);
  for (; j + kL <= out; j += kL) xw_tile<T, R, 1>(x, w + j, y + j, k, ldx, ldw, ldy);
  // The columns past the last vector: one fused multiply-add per term spelled out, since the
  // compiler contracted `s += x * w` in some instantiations of R and not in others.
  for (; j < out; ++j) {
    for (int r = 0; r < R; ++r) {
      T s = 0;
      for (int64_t t = 0; t < k; ++t) s = fmadd1(x[r * ldx + t], w[t * ldw + j], s);
      y[r * ldy + j] = s;
    }
  }
}

// Rows [0, n) of y = x w: blocks of 8 rows share each loaded w vector; the leftover rows go 4,
// 2, 1 at a time.
template <typename T, bool Packed>
void xw_seq(const T* x, const T* w, T* y, int64_t n, int64_t k, int64_t out, int64_t ldw,
            int64_t ldx, int64_t ldy) {
  int64_t i = 0;
  auto rows = [&](auto r) {
    constexpr int R = decltype(r)::value;
    xw_rows<T, R, Packed>(x + i * ldx, w, y + i * ldy, k, out, ldx, ldw, ldy);
    i += R;
  };
  while (i + 8 <= n) rows(std::integral_constant<int, 8>{});
  if (n - i >= 4) rows(std::integral_constant<int, 4>{});
  if (n - i >= 2) rows(std::integral_constant<int, 2>{});
  if (i < n) rows(std::integral_constant<int, 1>{});
}

}  // namespace

void pack_bf16_blocks(const float* x, int64_t n, float* packed) {
  AHA_CHECK(n % 32 == 0, "pack_bf16_blocks: ", n, " values, not a multiple of 32");
  bf16::pack_blocks(x, n, reinterpret_cast<uint32_t*>(packed));
}

void unpack_bf16_blocks(const float* packed, int64_t n, float* x) {
  AHA_CHECK(n % 32 == 0, "unpack_bf16_blocks: ", n, " values, not a multiple of 32");
  for (int64_t b = 0; b < n; b += 32) {
    V16 first, second;
    load_bf16x32(packed + b / 2, first, second);
    std::memcpy(x + b, &first, sizeof(first));
    std::memcpy(x + b + 16, &second, sizeof(second));
  }
}

void gemm_xw_seq_packed(const float* x, const float* w, float* y, int64_t n, int64_t k,
                        int64_t out, int64_t ldw, int64_t ldx, int64_t ldy) {
  AHA_CHECK(out % 32 == 0, "gemm_xw_seq_packed: ", out, " columns, not a multiple of 32");
  xw_seq<float, true>(x, w, y, n, k, out, ldw, ldx < 0 ? k : ldx, ldy < 0 ? out : ldy);
}

void gemm_xwt_rowstable_serial_packed(const float* x, const float* w, int64_t packed, float* y,
                                      int64_t n, int64_t in, int64_t out, int64_t ldx,
                                      int64_t ldw, int64_t ldy) {
  AHA_CHECK(packed % 32 == 0 && packed <= in, "gemm_xwt_rowstable_serial_packed: ", packed,
            " bf16 values of ", in, ", not a multiple of 32");
  if (n <= 0 || out <= 0) return;
  Operands<float> g{x, w, nullptr, y, n, in, out, ldx < 0 ? in : ldx, ldw, ldy < 0 ? out : ldy};
  g.packed = packed;
  block_f32<true>(g, 0, n, 0, out);
}

template <typename T>
void gemm_xw_seq(const T* x, const T* w, T* y, int64_t n, int64_t k, int64_t out, int64_t ldw,
                 int64_t ldx, int64_t ldy) {
  xw_seq<T, false>(x, w, y, n, k, out, ldw, ldx < 0 ? k : ldx, ldy < 0 ? out : ldy);
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
