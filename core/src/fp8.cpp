// FP8 E4M3 codec (table decode, bit-level round-to-nearest-even encode) and block quantization.
#include "aha/core/fp8.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cfloat>
#include <cmath>
#include <limits>

#include "aha/core/error.h"

namespace aha {

namespace {

constexpr std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int b = 0; b < 256; ++b) {
    const int exp = (b >> 3) & 15, mant = b & 7;
    float v;
    if (exp == 15 && mant == 7) {
      v = std::numeric_limits<float>::quiet_NaN();
    } else {
      // subnormal: mant * 2^-9; normal: (8 + mant) * 2^(exp - 10). Powers of two are exact.
      float unit = 1.0f / 512.0f;
      for (int e = 1; e < exp; ++e) unit *= 2.0f;
      v = exp == 0 ? static_cast<float>(mant) * unit : static_cast<float>(8 + mant) * unit;
    }
    t[b] = (b & 0x80) ? -v : v;
  }
  return t;
}

constexpr std::array<float, 256> kE4m3Table = make_e4m3_table();

}  // namespace

float e4m3_to_float(uint8_t bits) { return kE4m3Table[bits]; }

uint8_t float_to_e4m3(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7fffffffu;
  constexpr uint32_t k480 = 0x43f00000u;        // first value past 448 on the E4M3 grid
  constexpr uint32_t kMinNormal = 0x3c800000u;  // 2^-6
  if (a >= k480) return sign | 0x7f;            // NaN, inf and too large: NaN (as torch)
  if (a < kMinNormal) {
    // Subnormal range: a multiple of 2^-9; scaling by 512 is exact, nearbyint rounds to even.
    // A result of 8 is the code of 2^-6, the smallest normal.
    const float m = std::nearbyint(std::bit_cast<float>(a) * 512.0f);
    return sign | static_cast<uint8_t>(m);
  }
  const uint32_t exp = (a >> 23) - 127 + 7;  // 1..8 here
  const uint32_t mant = a & 0x7fffffu;
  uint32_t code = (exp << 3) | (mant >> 20);
  const uint32_t rest = mant & 0xfffffu;  // the 20 bits below E4M3's mantissa
  if (rest > 0x80000u || (rest == 0x80000u && (code & 1u))) ++code;  // may carry into exp
  // (464, 480) rounds to the code 0x7f, which is NaN: torch gives NaN there too.
  return sign | static_cast<uint8_t>(code);
}

int64_t fp8_scale_rows(int64_t n, const Fp8BlockFormat& f) {
  return (n + f.block_n - 1) / f.block_n;
}
int64_t fp8_scale_cols(int64_t k, const Fp8BlockFormat& f) {
  return (k + f.block_k - 1) / f.block_k;
}

template <typename T>
void fp8_dequantize(const uint8_t* codes, const float* scale_inv, int64_t n, int64_t k,
                    const Fp8BlockFormat& f, T* dst) {
  const int64_t sc = fp8_scale_cols(k, f);
  for (int64_t i = 0; i < n; ++i) {
    const float* srow = scale_inv + (i / f.block_n) * sc;
    for (int64_t j = 0; j < k; ++j) {
      dst[i * k + j] =
          static_cast<T>(kE4m3Table[codes[i * k + j]]) * static_cast<T>(srow[j / f.block_k]);
    }
  }
}

namespace {

// Smallest power of two 2^e (e >= -126) with amax <= 464 * 2^e: then amax / 2^e rounds to at
// most 448. Compared exactly (ldexp of 464 is exact).
float ue8m0_scale(double amax) {
  int e = 0;
  std::frexp(amax / 464.0, &e);  // a first guess, corrected below by exact comparisons
  while (e > -126 && amax <= std::ldexp(464.0, e - 1)) --e;
  while (amax > std::ldexp(464.0, e)) ++e;
  return std::ldexp(1.0f, std::max(e, -126));
}

}  // namespace

template <typename T>
void fp8_quantize(const T* w, int64_t n, int64_t k, const Fp8BlockFormat& f, uint8_t* codes,
                  float* scale_inv) {
  const int64_t sr = fp8_scale_rows(n, f), sc = fp8_scale_cols(k, f);
  for (int64_t bi = 0; bi < sr; ++bi) {
    const int64_t i0 = bi * f.block_n, i1 = std::min(n, i0 + f.block_n);
    for (int64_t bj = 0; bj < sc; ++bj) {
      const int64_t j0 = bj * f.block_k, j1 = std::min(k, j0 + f.block_k);
      T amax = 0;
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = j0; j < j1; ++j) {
          const T v = w[i * k + j];
          if (!std::isfinite(v)) {
            fail("[fp8_quantize] non-finite value ", v, " at [", i, ", ", j, "]");
          }
          amax = std::max(amax, std::abs(v));
        }
      }
      // amax / 448 rounded in T: re-quantizing the dequantized block finds amax = 448 * scale
      // and, in float as in double, the same scale again.
      float s = f.ue8m0 ? ue8m0_scale(static_cast<double>(amax))
                        : std::max(static_cast<float>(amax / static_cast<T>(448)), FLT_MIN);
      scale_inv[bi * sc + bj] = s;
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = j0; j < j1; ++j) {
          codes[i * k + j] = float_to_e4m3(static_cast<float>(w[i * k + j] / static_cast<T>(s)));
        }
      }
    }
  }
}

template void fp8_dequantize<float>(const uint8_t*, const float*, int64_t, int64_t,
                                    const Fp8BlockFormat&, float*);
template void fp8_dequantize<double>(const uint8_t*, const float*, int64_t, int64_t,
                                     const Fp8BlockFormat&, double*);
template void fp8_quantize<float>(const float*, int64_t, int64_t, const Fp8BlockFormat&, uint8_t*,
                                  float*);
template void fp8_quantize<double>(const double*, int64_t, int64_t, const Fp8BlockFormat&, uint8_t*,
                                   float*);

}  // namespace aha
