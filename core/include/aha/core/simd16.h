// 16-float vectors (GCC vector extensions: AVX-512 where the build has it, two or four narrower
// registers elsewhere) and the operations the register-tile kernels are made of.
#pragma once

#include <cstring>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace aha::simd16 {

typedef float V16 __attribute__((vector_size(64)));

inline V16 load16(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// A store through a vector type of float's alignment, not a memcpy from the vector's address:
// taking that address made GCC keep a register tile's accumulators in a copy on the stack.
inline void store16(float* p, V16 v) {
  typedef float V16u __attribute__((vector_size(64), aligned(4), may_alias));
  *reinterpret_cast<V16u*>(p) = v;
}

// Not V16{} + v: 0 + v is not v for v = -0, so the compiler keeps the add before broadcasting.
inline V16 splat(float v) { return V16{v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v}; }

// acc + a * b rounded once where the build has FMA (the chains the kernels promise).
inline V16 fmadd(V16 a, V16 b, V16 acc) {
#if defined(__AVX512F__)
  return reinterpret_cast<V16>(_mm512_fmadd_ps(
      reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b), reinterpret_cast<__m512>(acc)));
#elif defined(__FMA__)
  __m256 r[2];
  for (int h = 0; h < 2; ++h) {
    __m256 ah, bh, ch;
    std::memcpy(&ah, reinterpret_cast<const char*>(&a) + 32 * h, 32);
    std::memcpy(&bh, reinterpret_cast<const char*>(&b) + 32 * h, 32);
    std::memcpy(&ch, reinterpret_cast<const char*>(&acc) + 32 * h, 32);
    r[h] = _mm256_fmadd_ps(ah, bh, ch);
  }
  V16 v;
  std::memcpy(&v, r, 64);
  return v;
#else
  return acc + a * b;
#endif
}

}  // namespace aha::simd16
