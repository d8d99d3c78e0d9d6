// The micro-kernels of bf16_micro.h.
#include "bf16_micro.h"

#include "bf16_pack.h"

#include "aha/core/simd16.h"

#include <cstring>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace aha::bf16 {

namespace {

// Pair p of the tile's row r (Micro's two layouts).
template <bool APanel>
inline uint32_t a_pair(const uint32_t* a, int64_t lda, int r, int64_t p) {
  return APanel ? a[p * kLanes + r] : a[r * lda + p];
}

#if defined(__x86_64__)
// o = y (+ o under accumulate) (+ the bias of panel v), the adds store_tile makes.
__attribute__((target("avx512f,avx512bf16"), always_inline)) inline void store_sum(
    float* o, __m512 y, bool accumulate, const float* bias, int v) {
  if (accumulate) y = _mm512_add_ps(_mm512_loadu_ps(o), y);
  if (bias != nullptr) y = _mm512_add_ps(y, _mm512_loadu_ps(bias + v * kLanes));
  _mm512_storeu_ps(o, y);
}

template <int MR, int NV, bool APanel>
__attribute__((target("avx512f,avx512bf16"))) void micro_hw(const uint32_t* a, int64_t lda,
                                                             int64_t kp, const uint32_t* b,
                                                             int64_t pstride, const Dest& d) {
  // Dest's fields in locals, and a loop that runs at least once: otherwise the compiler kept
  // acc on the stack for the path that skips the loop (24 stores to zero it, 24 to spill it, a
  // reload and d's fields read again per row: a tenth of a tile over 128 pairs).
  float* const c = d.c;
  const int64_t ldc = d.ldc;
  const bool accumulate = d.accumulate;
  const float* const bias = d.bias;
  if (kp <= 0) {
    for (int r = 0; r < MR; ++r) {
      for (int v = 0; v < NV; ++v) {
        store_sum(c + r * ldc + v * kLanes, _mm512_setzero_ps(), accumulate, bias, v);
      }
    }
    return;
  }
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  int64_t p = 0;
  do {
    __m512bh bv[NV];
    for (int v = 0; v < NV; ++v) {
      bv[v] = (__m512bh)_mm512_loadu_si512(b + v * pstride + p * kLanes);
    }
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a_pair<APanel>(a, lda, r, p)));
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  } while (++p < kp);
  // Unrolled, so that each acc[r][v] is a register, never an index into a copy on the stack.
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      store_sum(c + r * ldc + v * kLanes, acc[r][v], accumulate, bias, v);
    }
  }
}
#endif

typedef float V16 __attribute__((vector_size(64)));
typedef uint32_t U16 __attribute__((vector_size(64)));

inline V16 as_float(U16 u) {
  V16 f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

float hi_half(uint32_t w) {
  const uint32_t u = w & 0xffff0000u;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float lo_half(uint32_t w) { return hi_half(w << 16); }

// The same sums without AVX512-BF16: each product of two bf16 values is exact in fp32, so the
// two adds per pair round exactly as VDPBF16PS's do.
template <int MR, int NV, bool APanel>
void micro_emu(const uint32_t* a, int64_t lda, int64_t kp, const uint32_t* b, int64_t pstride,
               const Dest& d) {
  // Laid out as micro_hw, for the same reason (no copy of acc on the stack).
  float* const c = d.c;
  const int64_t ldc = d.ldc;
  const bool accumulate = d.accumulate;
  const float* const bias = d.bias;
  auto store = [&](float* o, V16 y, int v) {
    V16 t;
    if (accumulate) {
      std::memcpy(&t, o, sizeof(t));
      y = t + y;
    }
    if (bias != nullptr) {
      std::memcpy(&t, bias + v * kLanes, sizeof(t));
      y = y + t;
    }
    simd16::store16(o, y);
  };
  if (kp <= 0) {
    for (int r = 0; r < MR; ++r) {
      for (int v = 0; v < NV; ++v) store(c + r * ldc + v * kLanes, V16{}, v);
    }
    return;
  }
  V16 acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = V16{};
  }
  int64_t p = 0;
  do {
    V16 bhi[NV], blo[NV];
    for (int v = 0; v < NV; ++v) {
      U16 w;
      std::memcpy(&w, b + v * pstride + p * kLanes, sizeof(w));
      bhi[v] = as_float(w & 0xffff0000u);
      blo[v] = as_float(w << 16);
    }
    for (int r = 0; r < MR; ++r) {
      const uint32_t w = a_pair<APanel>(a, lda, r, p);
      const float ah = hi_half(w), al = lo_half(w);
      for (int v = 0; v < NV; ++v) {
        acc[r][v] = acc[r][v] + ah * bhi[v];
        acc[r][v] = acc[r][v] + al * blo[v];
      }
    }
  } while (++p < kp);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) store(c + r * ldc + v * kLanes, acc[r][v], v);
  }
}

template <int MR, int NV>
Micro pick_one(bool hw, bool a_panel) {
#if defined(__x86_64__)
  if (hw) return a_panel ? &micro_hw<MR, NV, true> : &micro_hw<MR, NV, false>;
#endif
  (void)hw;
  return a_panel ? &micro_emu<MR, NV, true> : &micro_emu<MR, NV, false>;
}

}  // namespace

int tile_rows(int64_t rows_left) {
  static_assert(kMR == 8);
  return rows_left >= 8 ? 8 : rows_left >= 4 ? 4 : rows_left >= 2 ? 2 : 1;
}

Micro pick_micro(int rows, int panels, bool hw, bool a_panel) {
  static_assert(kNV == 3);
  auto for_rows = [&](auto mr) -> Micro {
    constexpr int R = decltype(mr)::value;
    if (panels >= 3) return pick_one<R, 3>(hw, a_panel);
    if (panels == 2) return pick_one<R, 2>(hw, a_panel);
    return pick_one<R, 1>(hw, a_panel);
  };
  switch (rows) {
    case 8: return for_rows(std::integral_constant<int, 8>{});
    case 4: return for_rows(std::integral_constant<int, 4>{});
    case 2: return for_rows(std::integral_constant<int, 2>{});
    default: return for_rows(std::integral_constant<int, 1>{});
  }
}

}  // namespace aha::bf16
