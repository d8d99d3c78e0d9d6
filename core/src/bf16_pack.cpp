// Vectorised bf16 packing. Each layout reads its source along rows (cache lines): rows of a
// row-major operand convert in place order (a pair is two neighbours), columns of a transposed
// one interleave two source rows, and the two transposing cases go through a 16 x 16 block of
// pairs held in L1.
#include "bf16_pack.h"

#include "aha/core/transpose16.h"

#include <algorithm>
#include <cstring>

#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

namespace aha::bf16 {

namespace {

typedef float V16 __attribute__((vector_size(64)));
typedef uint32_t U16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
typedef uint16_t H16 __attribute__((vector_size(32)));

// 16 floats -> their bf16 bits in the low half of each lane (to_bf16, lane-wise).
inline U16 cvt(const float* src) {
#if defined(__AVX512BF16__)
  // Built for a CPU with AVX512-BF16: VCVTNEPS2BF16 rounds exactly as to_bf16 (nearest even,
  // subnormals to signed zero, NaN quieted by setting bit 6), without consulting MXCSR.
  const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src));
  return (U16)_mm512_cvtepu16_epi32((__m256i)h);
#else
  U16 u;
  std::memcpy(&u, src, sizeof(u));
  const U16 rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const U16 nan = (U16)((u & 0x7fffffffu) > 0x7f800000u);
  const U16 sub = (U16)((u & 0x7f800000u) == 0u);
  const U16 special = (nan & ((u >> 16) | 0x40u)) | (sub & ((u >> 16) & 0x8000u));
  return (special & (nan | sub)) | (rounded & ~(nan | sub));
#endif
}

// The same for n < 16 values (the rest read as zero).
inline U16 cvt_part(const float* src, int64_t n) {
  float tmp[kLanes] = {};
  std::memcpy(tmp, src, size_t(n) * sizeof(float));
  return cvt(tmp);
}

inline U16 cvt_strided(const MatRef& r, int64_t row, int64_t col0, int64_t n) {
  // r.p[row * ld + col0 ...]: n contiguous values.
  const float* src = r.p + row * r.ld + col0;
  return n == kLanes ? cvt(src) : cvt_part(src, n);
}

inline float elem(const MatRef& r, int64_t i, int64_t k) {
  return r.trans ? r.p[k * r.ld + i] : r.p[i * r.ld + k];
}

inline uint32_t pair1(const MatRef& r, int64_t i, int64_t p, int64_t k) {
  const uint32_t lo = to_bf16(elem(r, i, 2 * p));
  const uint32_t hi = 2 * p + 1 < k ? to_bf16(elem(r, i, 2 * p + 1)) : 0u;
  return lo | (hi << 16);
}

// dst[c * dst_stride + r] = src[r * 16 + c] for the 16 rows r of src and its first cols columns.
inline void transpose16(const uint32_t* src, int64_t cols, uint32_t* dst, int64_t dst_stride) {
  U16 x[kLanes];
  std::memcpy(x, src, sizeof(x));
  transpose16x16(x);
  for (int64_t c = 0; c < cols; ++c) std::memcpy(dst + c * dst_stride, &x[c], sizeof(U16));
}

#if defined(__AVX512BF16__)
// 32 floats -> their bf16 values in order, one VCVTNE2PS2BF16 (the rounding of cvt's VCVTNEPS2BF16;
// the pair of them was a convert, a widening and a narrowing per 16 values).
inline __m512i cvt32(const float* src) {
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + kLanes), _mm512_loadu_ps(src));
}
#endif

// A contiguous source row of k values -> kp pairs (the bf16 values in order, zero-padded).
void row_pairs(const float* src, int64_t k, uint32_t* dst) {
  uint16_t* h = reinterpret_cast<uint16_t*>(dst);
  int64_t c = 0;
#if defined(__AVX512BF16__)
  for (; c + 2 * kLanes <= k; c += 2 * kLanes) _mm512_storeu_si512(h + c, cvt32(src + c));
#endif
  for (; c + kLanes <= k; c += kLanes) {
    const H16 v = __builtin_convertvector(cvt(src + c), H16);
    std::memcpy(h + c, &v, sizeof(v));
  }
  for (; c < k; ++c) h[c] = to_bf16(src[c]);
  if (k % 2) h[k] = 0;
}

// Pairs [p0, p0 + np) of 16 columns whose pair p interleaves source rows 2p and 2p + 1 (each
// with nc contiguous values from col0): out[(p - p0) * 16 + c].
void interleave(const MatRef& r, int64_t col0, int64_t nc, int64_t p0, int64_t np, int64_t k,
                uint32_t* out, int64_t out_stride) {
  int64_t p = p0;
#if defined(__AVX512BF16__)
  if (nc == kLanes) {
    // Both rows in one conversion (row 2p in the low 16 values, 2p + 1 in the high 16), then
    // one permutation pairs value l of each.
    const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                           16, 0);
    for (; p < p0 + np && 2 * p + 1 < k; ++p) {
      const float* lo = r.p + 2 * p * r.ld + col0;
      const __m512 hi = _mm512_loadu_ps(lo + r.ld);
      const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, _mm512_loadu_ps(lo));
      _mm512_storeu_si512(out + (p - p0) * out_stride, _mm512_permutexvar_epi16(pairs, both));
    }
  }
#endif
  for (; p < p0 + np; ++p) {
    const U16 lo = cvt_strided(r, 2 * p, col0, nc);
    const U16 hi = 2 * p + 1 < k ? cvt_strided(r, 2 * p + 1, col0, nc) : U16{};
    const U16 w = lo | (hi << 16);
    std::memcpy(out + (p - p0) * out_stride, &w, sizeof(w));
  }
}

}  // namespace

namespace {

// Rows [i0, i1) of a transposed r, pairs [p_lo, p_hi) (p_lo a multiple of 16): 16 rows at a time
// are 16 contiguous values of two source rows per pair. Rows inner, so the 32 source rows of a
// block of pairs are read along their length (64 bytes a row per block of rows would leave every
// read a cache miss). The last block's pairs past kp are zero: they are the padding up to the
// stride.
void transposed_rows(const MatRef& r, int64_t i0, int64_t i1, int64_t p_lo, int64_t p_hi,
                     int64_t k, uint32_t* out) {
  const int64_t stride = pair_stride(k);
  alignas(64) uint32_t blk[kLanes * kLanes];
  for (int64_t p0 = p_lo; p0 < p_hi; p0 += kLanes) {
    const int64_t np = std::min<int64_t>(kLanes, p_hi - p0);
    for (int64_t b0 = i0; b0 < i1; b0 += kLanes) {
      const int64_t nr = std::min<int64_t>(kLanes, i1 - b0);
      interleave(r, b0, nr, p0, np, k, blk, kLanes);  // blk[pp * 16 + row]
      std::fill(blk + np * kLanes, blk + kLanes * kLanes, 0u);
      transpose16(blk, nr, out + (b0 - i0) * stride + p0, stride);  // rows past nr unwritten
    }
  }
}

}  // namespace

void round_values(const float* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const int64_t len = std::min<int64_t>(kLanes, n - i);
    const U16 bits = (len == kLanes ? cvt(src + i) : cvt_part(src + i, len)) << 16;
    std::memcpy(dst + i, &bits, size_t(len) * sizeof(float));
  }
}

void pack_blocks(const float* src, int64_t n, uint32_t* dst) {
  for (int64_t b = 0; b < n; b += 2 * kLanes) {
    const U16 w = cvt(src + b) | (cvt(src + b + kLanes) << 16);
    std::memcpy(dst + b / 2, &w, sizeof(w));
  }
}

void pack_rows(const MatRef& r, int64_t i0, int64_t i1, int64_t k, uint32_t* out) {
  const int64_t kp = (k + 1) / 2, stride = pair_stride(k);
  if (!r.trans) {
    for (int64_t i = i0; i < i1; ++i) {
      uint32_t* o = out + (i - i0) * stride;
      row_pairs(r.p + i * r.ld, k, o);
      std::fill(o + kp, o + stride, 0u);
    }
    return;
  }
  transposed_rows(r, i0, i1, 0, kp, k, out);
}

void pack_row_pairs(const MatRef& r, int64_t p_lo, int64_t p_hi, int64_t m, int64_t k,
                    uint32_t* out) {
  transposed_rows(r, 0, m, p_lo, p_hi, k, out);
}

namespace {

// Panel q of a row-major r: each of the 16 rows converts 16 pairs into a block, written out
// transposed; the last block's pairs past kp are zero, the padding up to the stride.
void pack_panel_rows(const MatRef& r, int64_t q, int64_t n, int64_t k, uint32_t* out) {
  const int64_t kp = (k + 1) / 2, j0 = q * kLanes, nc = std::min<int64_t>(kLanes, n - j0);
  alignas(64) uint32_t blk[kLanes * kLanes];
  for (int64_t p0 = 0; p0 < kp; p0 += kLanes) {
    const int64_t np = std::min<int64_t>(kLanes, kp - p0);
    for (int64_t c = 0; c < kLanes; ++c) {
      uint32_t* row = blk + c * kLanes;
      if (c >= nc) {
        std::fill(row, row + kLanes, 0u);
      } else if (2 * (p0 + kLanes) <= k) {
        row_pairs(r.p + (j0 + c) * r.ld + 2 * p0, 2 * kLanes, row);
      } else {
        for (int64_t pp = 0; pp < np; ++pp) row[pp] = pair1(r, j0 + c, p0 + pp, k);
        std::fill(row + np, row + kLanes, 0u);
      }
    }
    transpose16(blk, kLanes, out + p0 * kLanes, kLanes);
  }
}

}  // namespace

namespace {

// Panels [q0, q1) of a transposed r (out starts at panel q0), pairs [p_lo, p_hi) (p_lo a
// multiple of 16): a pair interleaves two source rows. Panels inner, for the reason of
// pack_rows. Whoever packs the last pairs also zeroes every panel's padding past them.
void transposed_panels(const MatRef& r, int64_t q0, int64_t q1, int64_t p_lo, int64_t p_hi,
                       int64_t n, int64_t k, uint32_t* out) {
  const int64_t kp = (k + 1) / 2, pstride = pair_stride(k) * kLanes;
  for (int64_t p0 = p_lo; p0 < p_hi; p0 += kLanes) {
    const int64_t np = std::min<int64_t>(kLanes, p_hi - p0);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t j0 = q * kLanes, nc = std::min<int64_t>(kLanes, n - j0);
      interleave(r, j0, nc, p0, np, k, out + (q - q0) * pstride + p0 * kLanes, kLanes);
    }
  }
  if (p_hi != kp) return;
  for (int64_t q = q0; q < q1; ++q) {
    uint32_t* o = out + (q - q0) * pstride;
    std::fill(o + kp * kLanes, o + pstride, 0u);
  }
}

}  // namespace

void pack_panels(const MatRef& r, int64_t q0, int64_t q1, int64_t n, int64_t k, uint32_t* out) {
  if (!r.trans) {
    const int64_t pstride = pair_stride(k) * kLanes;
    for (int64_t q = q0; q < q1; ++q) pack_panel_rows(r, q, n, k, out + (q - q0) * pstride);
    return;
  }
  transposed_panels(r, q0, q1, 0, (k + 1) / 2, n, k, out);
}

void pack_panel_pairs(const MatRef& r, int64_t p_lo, int64_t p_hi, int64_t n, int64_t k,
                      uint32_t* out) {
  transposed_panels(r, 0, (n + kLanes - 1) / kLanes, p_lo, p_hi, n, k, out);
}

}  // namespace aha::bf16
