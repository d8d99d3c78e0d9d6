// The training attention's float kernels for plain causal attention with head widths that are
// multiples of 16: every product is a register tile of 8 rows by 32 or 48 columns, the columns in
// the SIMD lanes, and each output one chain of fused multiply-adds in a fixed order.
//
// Why not a BLAS call per product (the general path in attention_kernel.cpp): at these shapes
// (64 query rows, head widths of 32-192) OpenBLAS spends as much time packing and in its small-
// matrix paths as multiplying, and a product over a block of keys computes the whole diagonal
// block that the causal mask then throws away. Here each 8-row tile stops at its own last key,
// and the softmax runs over the scores while they are still in this core's cache.
#include "attention_fused.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "aha/core/aligned.h"
#include "aha/core/gemm_bf16.h"
#include "aha/core/simd16.h"
#include "aha/core/transpose16.h"
#include "vec16.h"

namespace aha::policy {

namespace {

constexpr int64_t kQueryBlock = 64;

int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

using simd16::fmadd;
using simd16::load16;
using simd16::splat;
using simd16::store16;

// c[r * ldc + 16 v + l] (+)= sum over t in [t0, t1) of a[r * ar + t * at] * b[t * ldb + 16 v + l]
// for r < R, v < NV: one chain per output, t ascending, from 0 or from c's value.
// t1 > t0. Starting from c is a template argument, the range is never empty and acc is never
// stored from its address: otherwise GCC kept acc on the stack (zeroed or loaded, spilled and
// reloaded per tile: a third of a tile over 48 values).
template <int R, int NV, bool Accumulate>
void tile_chains(const float* a, int64_t ar, int64_t at, const float* b, int64_t ldb, int64_t t0,
                 int64_t t1, float* c, int64_t ldc) {
  V16 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[r][v] = Accumulate ? load16(c + r * ldc + 16 * v) : V16{};
  }
  int64_t t = t0;
  do {
    V16 bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = load16(b + t * ldb + 16 * v);
    for (int r = 0; r < R; ++r) {
      const V16 s = splat(a[r * ar + t * at]);
      for (int v = 0; v < NV; ++v) acc[r][v] = fmadd(s, bv[v], acc[r][v]);
    }
  } while (++t < t1);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) store16(c + r * ldc + 16 * v, acc[r][v]);
  }
}

// t1 > t0: row_tile, the only caller, handles an empty range.
template <int R, int NV>
void tile(const float* a, int64_t ar, int64_t at, const float* b, int64_t ldb, int64_t t0,
          int64_t t1, float* c, int64_t ldc, bool accumulate) {
  if (accumulate) {
    tile_chains<R, NV, true>(a, ar, at, b, ldb, t0, t1, c, ldc);
  } else {
    tile_chains<R, NV, false>(a, ar, at, b, ldb, t0, t1, c, ldc);
  }
}

// One product over row tiles: for the tile of rows [row0, row_end) of c, range(row0, row_end)
// gives its t range and its columns [0, cols) (a TileRange); a row r of a is at a + r * ar. The
// ranges are what the causal mask leaves each tile (its last row's keys).
struct Product {
  const float* a;
  int64_t ar, at;
  const float* b;
  int64_t ldb;
  float* c;
  int64_t ldc;
  bool accumulate;
};

template <int R, typename Range>
void row_tile(const Product& p, int64_t r0, const Range& range) {
  const auto [t0, t1, cols] = range(r0, r0 + R);
  if (t1 <= t0) {
    if (!p.accumulate) {
      for (int r = 0; r < R; ++r) std::fill_n(p.c + (r0 + r) * p.ldc, cols, 0.0f);
    }
    return;
  }
  const float* a = p.a + r0 * p.ar;
  float* c = p.c + r0 * p.ldc;
  int64_t col = 0;
  // 48 columns first where 32 at a time would leave 16: a lone vector's 8 chains wait on the
  // multiply-add latency and on the loads (qk widths of 48 and 96, keys in steps of 16).
  if (cols % 32 == 16 && cols >= 48) {
    tile<R, 3>(a, p.ar, p.at, p.b, p.ldb, t0, t1, c, p.ldc, p.accumulate);
    col = 48;
  }
  for (; col + 32 <= cols; col += 32) {
    tile<R, 2>(a, p.ar, p.at, p.b + col, p.ldb, t0, t1, c + col, p.ldc, p.accumulate);
  }
  if (col < cols) tile<R, 1>(a, p.ar, p.at, p.b + col, p.ldb, t0, t1, c + col, p.ldc, p.accumulate);
}

template <typename Range>
void product(const Product& p, int64_t rows, const Range& range) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) row_tile<8>(p, r, range);
  if (r + 4 <= rows) {
    row_tile<4>(p, r, range);
    r += 4;
  }
  if (r + 2 <= rows) {
    row_tile<2>(p, r, range);
    r += 2;
  }
  if (r < rows) row_tile<1>(p, r, range);
}

struct TileRange {
  int64_t t0, t1, cols;
};

// x^T into dst [width][ld] (ld = round16(n), zero past n; width a multiple of 16): keys become
// the lanes of the score products. 16 x 16 blocks in registers: x's rows are a whole head apart,
// and a strided gather of one value per load was half of the forward's own time.
void transpose_rows(const float* x, int64_t ldx, int64_t n, int64_t width, float* dst, int64_t ld) {
  for (int64_t j0 = 0; j0 < ld; j0 += 16) {
    const int64_t nj = std::min<int64_t>(16, n - j0);
    for (int64_t d0 = 0; d0 < width; d0 += 16) {
      V16 r[16];
      for (int j = 0; j < 16; ++j) r[j] = j < nj ? load16(x + (j0 + j) * ldx + d0) : V16{};
      transpose16x16(r);
      for (int d = 0; d < 16; ++d) std::memcpy(dst + (d0 + d) * ld + j0, &r[d], 64);
    }
  }
}

// The block's score rows s[i * lds + j] for query rows r0 + i (i < rows), keys j < r0 + i + 1:
// keys past a row's own (up to its tile's last) are computed and then masked by the callers.
void scores(const float* q, int64_t ldq, const float* kt, int64_t ldk, int64_t width, int64_t r0,
            int64_t rows, float* s, int64_t lds) {
  product({q, ldq, 1, kt, ldk, s, lds, false}, rows, [&](int64_t, int64_t end) {
    return TileRange{0, width, round16(r0 + end)};
  });
}

// Keys [0, n) of a score row: p = exp(scale p - shift) in place, 0 on [n, ld). With a sum, its
// parts in *lanes (each lane's over the whole blocks of 16 keys) and *tail (the last n % 16
// keys' exponentials, 0 past them), which row_sums adds up. The backward needs no sum.
template <bool Sum>
void exp_shifted_row(float* p, int64_t n, int64_t ld, float scale, float shift, V16* lanes,
                     V16* tail) {
  V16 acc = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const V16 e = exp_nonpos(load16(p + j) * scale - shift);
    std::memcpy(p + j, &e, 64);
    if constexpr (Sum) acc += e;
  }
  V16 rest = {};
  if (j < n) {
    rest = first_lanes(exp_nonpos(load_part(p + j, n - j, 0.0f) * scale - shift), n - j, 0.0f);
    store_part(p + j, n - j, rest);
  }
  std::fill(p + n, p + ld, 0.0f);
  if constexpr (Sum) {
    *lanes = acc;
    *tail = rest;
  }
}

// The forward's softmax numerators: e = exp(scale s - max), their sum's parts in *lanes and
// *tail (row_sums); returns the max of scale s. The forward divides its output rows by the sums
// instead of normalising every probability.
float exp_row(float* p, int64_t n, int64_t ld, float scale, V16* lanes, V16* tail) {
  V16 m16 = splat(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const V16 v = load16(p + j) * scale;
    m16 = m16 < v ? v : m16;
  }
  float mx = max_across(m16);
  for (int64_t k = j; k < n; ++k) mx = std::max(mx, p[k] * scale);
  exp_shifted_row<true>(p, n, ld, scale, mx, lanes, tail);
  return mx;
}

using Scratch = std::vector<float, LineAllocator<float>>;

// Room for n values. Only grows: a resize down and up again zeroes the regrown part, and every
// value used is written before it is read.
template <typename Vec>
void grow(Vec& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(n);
}

}  // namespace

bool fused_attention_fits(const AttnShape& s) {
  return s.window == 0 && s.selected == nullptr && s.qk_dim % 16 == 0 && s.v_dim % 16 == 0 &&
         s.qk_dim > 0 && s.v_dim > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0;
}

namespace {

struct ForwardTask {
  size_t seq;
  int64_t s0, r0, r1;  // the sequence's first token; the query rows [r0, r1) within it
  int head;
};

// One query block of one head: its scores against the transposed keys kt (rows every ldt
// values), the softmax's lse, and its output rows.
void forward_block(const ForwardTask& t, const float* q, const float* kt, int64_t ldt,
                   const float* v, float* out, float* lse, int64_t n, const AttnStrides& d,
                   const AttnShape& s, Scratch& p) {
  const int kh = t.head / d.group;
  const float scale = static_cast<float>(s.scale);
  const int64_t rows = t.r1 - t.r0, ld = round16(t.r1);
  grow(p, rows * ld);
  float sums[kQueryBlock], maxes[kQueryBlock];
  V16 lanes[kQueryBlock], tails[kQueryBlock];
  scores(q + (t.s0 + t.r0) * d.qs + t.head * s.qk_dim, d.qs, kt, ldt, s.qk_dim, t.r0, rows,
         p.data(), ld);
  for (int64_t i = 0; i < rows; ++i) {
    maxes[i] = exp_row(p.data() + i * ld, t.r0 + i + 1, ld, scale, &lanes[i], &tails[i]);
  }
  for (int64_t i = 0; i < rows; i += 16) {
    row_sums(lanes + i, tails + i, static_cast<int>(std::min<int64_t>(16, rows - i)), sums + i);
  }
  for (int64_t i = 0; i < rows; ++i) {
    lse[t.head * n + t.s0 + t.r0 + i] = maxes[i] + std::log(sums[i]);
  }
  float* O = out + (t.s0 + t.r0) * d.os + t.head * s.v_dim;
  product({p.data(), ld, 1, v + t.s0 * d.vs + kh * s.v_dim, d.vs, O, d.os, false}, rows,
          [&](int64_t, int64_t end) {
            return TileRange{0, t.r0 + end, s.v_dim};
          });
  for (int64_t i = 0; i < rows; ++i) {
    const float inv = 1.0f / sums[i];
    for (int c = 0; c < s.v_dim; ++c) O[i * d.os + c] *= inv;
  }
}

}  // namespace

void fused_attention_forward(const float* q, const float* k, const float* v, float* out, float* lse,
                             const std::vector<int64_t>& seq_starts, const AttnShape& s) {
  const int64_t n = seq_starts.back();
  const AttnStrides d = attn_strides(s);
  const size_t n_seqs = seq_starts.size() - 1;
  std::vector<ForwardTask> tasks;
  // Every sequence's keys transposed once, per kv head ([head][qk][round16(len)] a sequence),
  // before the blocks that share them.
  std::vector<int64_t> kt_at(n_seqs + 1, 0);
  for (size_t i = 0; i < n_seqs; ++i) {
    const int64_t len = seq_starts[i + 1] - seq_starts[i];
    for (int64_t r0 = 0; r0 < len; r0 += kQueryBlock) {
      for (int h = 0; h < s.n_heads; ++h) {
        tasks.push_back({i, seq_starts[i], r0, std::min(len, r0 + kQueryBlock), h});
      }
    }
    kt_at[i + 1] = kt_at[i] + int64_t{s.n_kv_heads} * s.qk_dim * round16(len);
  }
  // The caller's, kept between calls (no page faults per layer); the tasks see it through
  // kt_data, as a thread_local named in them would be each worker's own. Isolated: while this
  // thread waits on the loops below it must not take up an outer task that comes back here and
  // resizes the same buffer (a caller inside another parallel loop).
  thread_local Scratch kt;
  grow(kt, kt_at.back());
  float* const kt_data = kt.data();
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n_seqs * s.n_kv_heads, 1),
                      [&](const tbb::blocked_range<size_t>& range) {
                        for (size_t ti = range.begin(); ti < range.end(); ++ti) {
                          const size_t i = ti / s.n_kv_heads;
                          const int kh = static_cast<int>(ti % s.n_kv_heads);
                          const int64_t len = seq_starts[i + 1] - seq_starts[i];
                          const int64_t ld = round16(len);
                          transpose_rows(k + seq_starts[i] * d.ks + kh * s.qk_dim, d.ks, len,
                                         s.qk_dim, kt_data + kt_at[i] + kh * s.qk_dim * ld, ld);
                        }
                      });
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, tasks.size(), 1),
        [&](const tbb::blocked_range<size_t>& range) {
          thread_local Scratch p;
          for (size_t ti = range.begin(); ti < range.end(); ++ti) {
            const ForwardTask& t = tasks[ti];
            const int64_t ldt = round16(seq_starts[t.seq + 1] - t.s0);
            forward_block(t, q, kt_data + kt_at[t.seq] + (t.head / d.group) * s.qk_dim * ldt, ldt,
                          v, out, lse, n, d, s, p);
          }
        },
        tbb::simple_partitioner());
  });
}

namespace {

// One (sequence, kv head) of the backward: its keys and values, their transposes (fp32) or
// their bf16 packing as right operands (k_packed the keys for dS K, v_packed the values for
// dO V^T: packed once for every query block and head of the group, where each block's products
// packed the keys and values up to its own again), and the gradients it owns.
struct KvSlice {
  const float* K;
  const float* V;
  const float* kt;
  const float* vt;
  const uint32_t* k_packed;
  const uint32_t* v_packed;
  float* dK;
  float* dV;
  int64_t len, ldt;
};

// One query block [r0, r1) of one head: dq for its rows; dk and dv of its keys added to (the
// block's own keys written by the group's first head). Under bf16 the four gradient products
// round their operands to bf16 on the AMX / VDPBF16PS kernel, as a linear layer's do; the
// scores are recomputed in fp32 so that P is the forward's.
void backward_block(const float* Q, const float* O, const float* dO, float* dQ, const float* lse,
                    const KvSlice& kv, const AttnStrides& d, const AttnShape& s, int64_t r0,
                    int64_t r1, bool first_head, bool bf16, float* p, float* dp) {
  const int64_t rows = r1 - r0, ld = round16(r1);
  const float scale = static_cast<float>(s.scale);
  scores(Q, d.qs, kv.kt, kv.ldt, s.qk_dim, r0, rows, p, ld);
  if (bf16) {
    gemm_bf16_packed(rows, r1, s.v_dim, {dO, d.os, false}, kv.v_packed, s.v_dim, dp, ld, false,
                     true);
  } else {
    scores(dO, d.os, kv.vt, kv.ldt, s.v_dim, r0, rows, dp, ld);
  }
  // D_i = sum_j dO_ij O_ij: each row's 16 lanes, added up 16 rows at a time (row_sums).
  float Ds[kQueryBlock];
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {
    const int m = static_cast<int>(std::min<int64_t>(16, rows - i0));
    V16 dacc[16], zero[16] = {};
    for (int i = 0; i < m; ++i) {
      dacc[i] = V16{};
      for (int64_t c = 0; c < s.v_dim; c += 16) {
        dacc[i] = fmadd(load16(dO + (i0 + i) * d.os + c), load16(O + (i0 + i) * d.os + c), dacc[i]);
      }
    }
    row_sums(dacc, zero, m, Ds + i0);
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* pi = p + i * ld;
    float* dpi = dp + i * ld;
    const int64_t keys = r0 + i + 1;
    exp_shifted_row<false>(pi, keys, ld, scale, lse[i], nullptr, nullptr);  // the forward's P
    const float D = Ds[i];
    // dS = P (dP - D), scaled once for both dQ and dK; 0 past the row's keys (dP is not
    // computed that far).
    const int64_t computed = std::min(round16(keys), r1) / 16 * 16;
    int64_t j = 0;
    for (; j < computed; j += 16) {
      const V16 ds = load16(pi + j) * (load16(dpi + j) - D) * scale;
      std::memcpy(dpi + j, &ds, 64);
    }
    for (; j < keys; ++j) dpi[j] = pi[j] * (dpi[j] - D) * scale;
    std::fill(dpi + j, dpi + ld, 0.0f);
  }
  // dK += dS^T Q and dV += P^T dO over the keys of this block's rows: the keys before the block,
  // then its own (written, not added to, by the group's first head).
  const std::tuple<int64_t, int64_t, bool> parts[] = {{0, r0, false}, {r0, r1, first_head}};
  if (bf16) {
    gemm_bf16_packed(rows, s.qk_dim, r1, {dp, ld, false}, kv.k_packed, kv.len, dQ, d.qs, false,
                     true);
    for (const auto& [k0, k1, fresh] : parts) {
      if (k1 <= k0) continue;
      gemm_bf16(k1 - k0, s.qk_dim, rows, {dp + k0, ld, true}, {Q, d.qs, true}, kv.dK + k0 * d.ks,
                d.ks, !fresh, nullptr, true);
      gemm_bf16(k1 - k0, s.v_dim, rows, {p + k0, ld, true}, {dO, d.os, true}, kv.dV + k0 * d.vs,
                d.vs, !fresh, nullptr, true);
    }
    return;
  }
  product({dp, ld, 1, kv.K, d.ks, dQ, d.qs, false}, rows, [&](int64_t, int64_t end) {
    return TileRange{0, r0 + end, s.qk_dim};
  });
  // A key tile starting at j0 takes the query rows from the first that sees j0.
  for (const auto& [k0, k1, fresh] : parts) {
    const auto from = [&, k0 = k0](int64_t width) {
      return [&, k0, width](int64_t j0, int64_t) {
        return TileRange{std::max<int64_t>(0, k0 + j0 - r0), rows, width};
      };
    };
    product({dp + k0, 1, ld, Q, d.qs, kv.dK + k0 * d.ks, d.ks, !fresh}, k1 - k0, from(s.qk_dim));
    product({p + k0, 1, ld, dO, d.os, kv.dV + k0 * d.vs, d.vs, !fresh}, k1 - k0, from(s.v_dim));
  }
}

}  // namespace

void fused_attention_backward(const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, float* dq, float* dk, float* dv,
                              const std::vector<int64_t>& seq_starts, const AttnShape& s) {
  const int64_t n = seq_starts.back();
  const AttnStrides d = attn_strides(s);
  const size_t n_seqs = seq_starts.size() - 1;
  const bool bf16 = matmul_precision() == MatmulPrecision::bf16;  // the caller's thread decides
  // One task per (sequence, kv head): it owns that slice of dk and dv, so no two tasks write the
  // same memory and every sum has one order.
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, n_seqs * s.n_kv_heads, 1),
      [&](const tbb::blocked_range<size_t>& range) {
        thread_local Scratch kt, vt, p, dp;
        thread_local std::vector<uint32_t, LineAllocator<uint32_t>> kp, vp;
        for (size_t ti = range.begin(); ti < range.end(); ++ti) {
          const int64_t s0 = seq_starts[ti / s.n_kv_heads];
          const int64_t len = seq_starts[ti / s.n_kv_heads + 1] - s0;
          const int kh = static_cast<int>(ti % s.n_kv_heads);
          const int64_t ldt = round16(len);
          grow(kt, s.qk_dim * ldt);  // the scores' keys, fp32 under either precision
          grow(p, kQueryBlock * ldt);
          grow(dp, kQueryBlock * ldt);
          const float* K = k + s0 * d.ks + kh * s.qk_dim;
          const float* V = v + s0 * d.vs + kh * s.v_dim;
          if (bf16) {
            grow(kp, bf16_packed_words(s.qk_dim, len));
            grow(vp, bf16_packed_words(len, s.v_dim));
            pack_bf16_operand({K, d.ks, true}, s.qk_dim, len, kp.data());
            pack_bf16_operand({V, d.vs, false}, len, s.v_dim, vp.data());
          } else {
            grow(vt, s.v_dim * ldt);
            transpose_rows(V, d.vs, len, s.v_dim, vt.data(), ldt);
          }
          const KvSlice kv{K,         V,
                           kt.data(), vt.data(),
                           kp.data(), vp.data(),
                           dk + s0 * d.ks + kh * s.qk_dim,
                           dv + s0 * d.vs + kh * s.v_dim,
                           len,       ldt};
          transpose_rows(K, d.ks, len, s.qk_dim, kt.data(), ldt);
          for (int h = kh * d.group; h < (kh + 1) * d.group; ++h) {
            for (int64_t r0 = 0; r0 < len; r0 += kQueryBlock) {
              const int64_t at = (s0 + r0) * d.os + h * s.v_dim;
              backward_block(q + (s0 + r0) * d.qs + h * s.qk_dim, out + at, dout + at,
                             dq + (s0 + r0) * d.qs + h * s.qk_dim, lse + h * n + s0 + r0, kv, d, s,
                             r0, std::min(len, r0 + kQueryBlock), h == kh * d.group, bf16, p.data(),
                             dp.data());
            }
          }
        }
      },
      tbb::simple_partitioner());
}

}  // namespace aha::policy
