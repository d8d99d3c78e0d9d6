// 16-float vectors (GCC vector extensions; AVX-512 where the build has it) for the attention
// kernels' row operations: the softmax's exponentials, maxima and partial loads.
#pragma once

#include <cstdint>
#include <cstring>

#include "aha/core/simd16.h"
#include "aha/core/transpose16.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace aha::policy {

using simd16::V16;

// exp(x) for x <= 0 (scores minus their maximum), 16 at a time: 2^n * p(f) with a degree-6
// polynomial on [-ln2/2, ln2/2]; relative error ~2e-7. x is clamped at -87 (exp ~ 1.6e-38).
inline V16 exp_nonpos(V16 x) {
  const V16 floor_x = V16{} - 87.0f, shifter = V16{} + 12582912.0f;  // 1.5 * 2^23
  x = x < floor_x ? floor_x : x;
  const V16 n = (x * 1.44269504088896341f + shifter) - shifter;  // round to nearest
  V16 f = x - n * 0.693359375f;
  f = f - n * -2.12194440e-4f;
  V16 p = f * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * f + 8.3334519073e-3f;
  p = p * f + 4.1665795894e-2f;
  p = p * f + 1.6666665459e-1f;
  p = p * f + 5.0000001201e-1f;
  p = p * f * f + f + 1.0f;
  typedef int32_t I16 __attribute__((vector_size(64)));
  const I16 e = (__builtin_convertvector(n, I16) + 127) << 23;
  V16 scale;
  __builtin_memcpy(&scale, &e, sizeof(e));
  return p * scale;
}

typedef int32_t I16 __attribute__((vector_size(64)));

// The first m (1-15) values at p, the other lanes `fill`; and back. Masked moves where the CPU
// has them (a copy of m values is a call to memcpy).
inline V16 load_part(const float* p, int64_t m, float fill) {
#if defined(__AVX512F__)
  return reinterpret_cast<V16>(
      _mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << m) - 1), p));
#else
  V16 v = V16{} + fill;
  __builtin_memcpy(&v, p, size_t(m) * sizeof(float));
  return v;
#endif
}

inline void store_part(float* p, int64_t m, V16 v) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << m) - 1), reinterpret_cast<__m512>(v));
#else
  __builtin_memcpy(p, &v, size_t(m) * sizeof(float));
#endif
}

// v's first m (0-16) lanes, `fill` in the others: a row's last partial block of keys.
inline V16 first_lanes(V16 v, int64_t m, float fill) {
  const I16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return lane < static_cast<int32_t>(m) ? v : V16{} + fill;
}

// The largest lane, halving the lanes in four steps.
inline float max_across(V16 m) {
  V16 t = __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  m = m < t ? t : m;
  t = __builtin_shufflevector(m, m, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  m = m < t ? t : m;
  t = __builtin_shufflevector(m, m, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  m = m < t ? t : m;
  t = __builtin_shufflevector(m, m, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
  m = m < t ? t : m;
  return m[0];
}

// The sums of `rows` (<= 16) softmax rows from their parts: lanes[r], the 16 lanes' partial sums
// over the row's whole blocks of 16 keys, and tails[r], its last n % 16 exponentials (0 past
// them). Each as one row's scalar loop adds them: 0, its 16 lanes in order, then its tail keys
// in order (the zeros past them change no sum begun at +0, which can never be -0). Sixteen rows
// at once in the lanes: a row's 16-32 dependent adds each waited on the one before.
inline void row_sums(const V16* lanes, const V16* tails, int rows, float* out) {
  V16 a[16], t[16];
  for (int r = 0; r < 16; ++r) {
    a[r] = r < rows ? lanes[r] : V16{};
    t[r] = r < rows ? tails[r] : V16{};
  }
  transpose16x16(a);
  transpose16x16(t);
  V16 total = {};
  for (int l = 0; l < 16; ++l) total += a[l];
  for (int l = 0; l < 16; ++l) total += t[l];
  std::memcpy(out, &total, sizeof(float) * rows);
}

}  // namespace aha::policy
