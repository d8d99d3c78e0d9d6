// The E4M3 codec against a second, brute-force implementation (nearest of all 256 codes) on every
// bit pattern, midpoint, subnormal and the overflow edge; block (de)quantization with ragged edges.
#include "aha/core/fp8.h"

#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "aha/core/dtype.h"
#include "aha/core/error.h"

namespace aha {
namespace {

// The value of an E4M3FN code from its definition (NaN for S.1111.111).
double e4m3_value(int b) {
  const int sign = b >> 7, exp = (b >> 3) & 15, mant = b & 7;
  if (exp == 15 && mant == 7) return std::numeric_limits<double>::quiet_NaN();
  const double v = exp == 0 ? std::ldexp(mant / 8.0, -6) : std::ldexp(1.0 + mant / 8.0, exp - 7);
  return sign ? -v : v;
}

// Reference encoder: the nearest of all non-NaN codes, ties to the even code; above 448 the
// candidate 480 stands for the NaN code 0x7f (torch's cast does not saturate: 464 is the tie).
uint8_t nearest_e4m3(double x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return sign | 0x7f;
  const double a = std::abs(x);
  if (a >= 480.0) return sign | 0x7f;  // past the last candidate (distances there lose precision)
  int best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= 0x7f; ++c) {
    const double v = c == 0x7f ? 480.0 : e4m3_value(c);
    const double d = std::abs(v - a);
    if (d < best_d || (d == best_d && (c & 1) == 0)) {
      best = c;
      best_d = d;
    }
  }
  return sign | static_cast<uint8_t>(best);
}

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

TEST(Fp8, DecodeEveryCodeMatchesTheDefinition) {
  for (int b = 0; b < 256; ++b) {
    const double v = e4m3_value(b);
    const float got = e4m3_to_float(static_cast<uint8_t>(b));
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(got)) << b;
    } else {
      EXPECT_EQ(static_cast<double>(got), v) << b;
      EXPECT_EQ(std::signbit(got), b >= 0x80) << b;  // -0 is 0x80
    }
  }
  EXPECT_EQ(e4m3_to_float(0x7e), 448.0f);
  EXPECT_EQ(e4m3_to_float(0xfe), -448.0f);
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(e4m3_to_float(0x38), 1.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7f)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0xff)));
  // The safetensors path decodes through the same table.
  std::vector<uint8_t> all(256);
  for (int b = 0; b < 256; ++b) all[b] = static_cast<uint8_t>(b);
  std::vector<float> dec(256);
  convert_to<float>(DType::kF8E4M3, all.data(), 256, dec.data());
  for (int b = 0; b < 256; ++b) EXPECT_TRUE(same_float(dec[b], e4m3_to_float(b))) << b;
  EXPECT_EQ(dtype_from_name("F8_E4M3"), DType::kF8E4M3);
  EXPECT_STREQ(dtype_name(DType::kF8E4M3), "F8_E4M3");
  EXPECT_EQ(dtype_size(DType::kF8E4M3), 1u);
}

TEST(Fp8, EveryBitPatternRoundTrips) {
  for (int b = 0; b < 256; ++b) {
    const float v = e4m3_to_float(static_cast<uint8_t>(b));
    const uint8_t back = float_to_e4m3(v);
    EXPECT_TRUE(same_float(e4m3_to_float(back), v)) << b;
    if (!std::isnan(v)) {
      EXPECT_EQ(back, b);
    } else {
      EXPECT_EQ(back, (b & 0x80) | 0x7f);
    }
  }
}

TEST(Fp8, HandDerivedRoundings) {
  const float sub = std::ldexp(1.0f, -9);
  struct Case {
    float x;
    uint8_t code;
  } cases[] = {
      {0.0f, 0x00},
      {-0.0f, 0x80},
      {0.5f * sub, 0x00},  // tie between 0 and the smallest subnormal: even is 0
      {0.5f * sub * 1.0001f, 0x01},
      {-0.5f * sub, 0x80},  // a negative value rounding to zero keeps its sign
      {1.5f * sub, 0x02},   // tie 1|2 -> 2
      {2.5f * sub, 0x02},   // tie 2|3 -> 2
      {3.5f * sub, 0x04},   // tie 3|4 -> 4
      {7.5f * sub, 0x08},   // tie 7|8 -> 8 = 2^-6, the smallest normal
      {8.5f * sub, 0x08},   // tie between 2^-6 and 9 * 2^-9 -> 0x08
      {1.0625f, 0x38},      // tie 1 | 1.125 -> 1
      {1.1875f, 0x3a},      // tie 1.125 | 1.25 -> 1.25
      {416.0f, 0x7d},       // 256 + 5 * 32: representable
      {432.0f, 0x7e},       // tie 416 | 448 -> 448 (mantissa 110)
      {448.0f, 0x7e},
      {460.0f, 0x7e},
      {464.0f, 0x7e},                        // tie 448 | 480: 448 (as torch)
      {std::nextafter(464.0f, 1e9f), 0x7f},  // NaN: torch's cast does not saturate
      {479.0f, 0x7f},
      {480.0f, 0x7f},
      {1e6f, 0x7f},
      {-1e6f, 0xff},
      {std::numeric_limits<float>::infinity(), 0x7f},
      {-std::numeric_limits<float>::infinity(), 0xff},
      {std::numeric_limits<float>::quiet_NaN(), 0x7f},
      {1e-30f, 0x00},
      {-1e-30f, 0x80},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(float_to_e4m3(c.x), c.code) << c.x;
    EXPECT_EQ(nearest_e4m3(c.x), c.code) << c.x;  // the reference agrees with the hand values
  }
}

TEST(Fp8, EncodeEqualsNearestCodeSearch) {
  std::vector<float> xs;
  // Every bfloat16 value (every exponent, both signs, subnormals, inf, NaN).
  for (uint32_t h = 0; h < 65536; ++h) xs.push_back(bf16_to_float(static_cast<uint16_t>(h)));
  // Every midpoint between neighbouring codes, and one float either side of it.
  for (int c = 0; c < 0x7e; ++c) {
    const float mid = static_cast<float>((e4m3_value(c) + e4m3_value(c + 1)) / 2);
    for (float m : {mid, -mid}) {
      xs.push_back(m);
      xs.push_back(std::nextafter(m, 0.0f));
      xs.push_back(std::nextafter(m, 2 * m));
    }
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> mant(0, (1u << 23) - 1);
  std::uniform_int_distribution<int> exp(127 - 14, 127 + 9);
  for (int i = 0; i < 200000; ++i) {
    xs.push_back(
        std::bit_cast<float>((uint32_t(i & 1) << 31) | (uint32_t(exp(rng)) << 23) | mant(rng)));
  }
  int mismatches = 0;
  for (float x : xs) {
    const uint8_t got = float_to_e4m3(x), want = nearest_e4m3(x);
    if (got != want && ++mismatches < 10) {
      ADD_FAILURE() << "x=" << x << " (0x" << std::hex << std::bit_cast<uint32_t>(x) << ") got 0x"
                    << int(got) << " want 0x" << int(want);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

std::vector<float> random_matrix(int64_t n, int64_t k, uint32_t seed, float std) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (float& v : w) v = d(rng);
  return w;
}

TEST(Fp8, RaggedBlockDequantization) {
  // The shape of DeepSeek-V3's kv_a_proj_with_mqa rows (576) against ragged columns (300).
  const int64_t n = 576, k = 300;
  const Fp8BlockFormat f{128, 128, false};
  ASSERT_EQ(fp8_scale_rows(n, f), 5);
  ASSERT_EQ(fp8_scale_cols(k, f), 3);
  std::mt19937 rng(1);
  std::vector<uint8_t> codes(n * k);
  for (auto& c : codes) {
    c = static_cast<uint8_t>(rng());
    if ((c & 0x7f) == 0x7f) c ^= 1;  // no NaN codes
  }
  std::vector<float> scales(5 * 3);
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = 0.001f * static_cast<float>(i + 1) / 3.0f;
  std::vector<float> out(n * k);
  std::vector<double> out64(n * k);
  fp8_dequantize<float>(codes.data(), scales.data(), n, k, f, out.data());
  fp8_dequantize<double>(codes.data(), scales.data(), n, k, f, out64.data());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      const double s = scales[(i / 128) * 3 + j / 128];
      const double want = e4m3_value(codes[i * k + j]) * s;  // exact in double
      ASSERT_EQ(out64[i * k + j], want) << i << "," << j;
      ASSERT_EQ(out[i * k + j], static_cast<float>(want)) << i << "," << j;
    }
  }
}

TEST(Fp8, QuantizeIsNearestPerBlockAndIdempotent) {
  struct Shape {
    int64_t n, k;
    Fp8BlockFormat f;
  } shapes[] = {{576, 300, {128, 128, false}}, {576, 300, {128, 128, true}},
                {37, 23, {8, 5, false}},       {37, 23, {8, 5, true}},
                {5, 7, {128, 128, false}},     {9, 4, {1, 1, true}}};
  for (const Shape& sh : shapes) {
    const int64_t n = sh.n, k = sh.k, sr = fp8_scale_rows(n, sh.f), sc = fp8_scale_cols(k, sh.f);
    std::vector<float> w = random_matrix(n, k, static_cast<uint32_t>(n + k), 0.02f);
    // A block of zeros and a block with a tiny range: scales must stay finite and positive.
    for (int64_t i = 0; i < std::min<int64_t>(n, sh.f.block_n); ++i) {
      for (int64_t j = 0; j < std::min<int64_t>(k, sh.f.block_k); ++j) w[i * k + j] = 0.0f;
    }
    if (sr > 1) w[(n - 1) * k] *= 1e-30f;
    std::vector<uint8_t> q(n * k), q2(n * k);
    std::vector<float> s(sr * sc), s2(sr * sc), deq(n * k);
    fp8_quantize<float>(w.data(), n, k, sh.f, q.data(), s.data());
    for (int64_t bi = 0; bi < sr; ++bi) {
      for (int64_t bj = 0; bj < sc; ++bj) {
        float amax = 0, scale = s[bi * sc + bj];
        for (int64_t i = bi * sh.f.block_n; i < std::min(n, (bi + 1) * sh.f.block_n); ++i) {
          for (int64_t j = bj * sh.f.block_k; j < std::min(k, (bj + 1) * sh.f.block_k); ++j) {
            amax = std::max(amax, std::abs(w[i * k + j]));
          }
        }
        ASSERT_TRUE(std::isfinite(scale) && scale > 0);
        if (sh.f.ue8m0) {
          int e;
          EXPECT_EQ(std::frexp(scale, &e), 0.5f) << "not a power of two: " << scale;
          // The smallest power of two under which amax still rounds to at most 448.
          EXPECT_LE(amax, 464.0 * scale);
          if (scale > FLT_MIN) {
            EXPECT_GT(amax, 232.0 * scale);
          }
        } else {
          EXPECT_EQ(scale, std::max(amax / 448.0f, FLT_MIN));
        }
        for (int64_t i = bi * sh.f.block_n; i < std::min(n, (bi + 1) * sh.f.block_n); ++i) {
          for (int64_t j = bj * sh.f.block_k; j < std::min(k, (bj + 1) * sh.f.block_k); ++j) {
            ASSERT_EQ(q[i * k + j], nearest_e4m3(w[i * k + j] / scale)) << i << "," << j;
            ASSERT_LE(std::abs(e4m3_to_float(q[i * k + j])), 448.0f);
          }
        }
      }
    }
    // Quantizing the dequantized weights gives the same codes and scales (float and double).
    fp8_dequantize<float>(q.data(), s.data(), n, k, sh.f, deq.data());
    fp8_quantize<float>(deq.data(), n, k, sh.f, q2.data(), s2.data());
    EXPECT_EQ(q2, q);
    EXPECT_EQ(s2, s);
    std::vector<double> deq64(n * k);
    fp8_dequantize<double>(q.data(), s.data(), n, k, sh.f, deq64.data());
    fp8_quantize<double>(deq64.data(), n, k, sh.f, q2.data(), s2.data());
    EXPECT_EQ(q2, q);
    EXPECT_EQ(s2, s);
  }
}

TEST(Fp8, ScaleFixedPointHoldsForEveryMantissa) {
  // Re-quantizing finds amax' = fl(448 * s) and must get s = fl(amax' / 448) back: checked for
  // every s that fl(amax / 448) can produce (one binade of amax; the rest scale by 2^e).
  for (uint32_t m = 0; m < (1u << 23); m += 7) {
    const float amax = std::bit_cast<float>((127u << 23) | m);
    const float s = amax / 448.0f;
    const float again = (448.0f * s) / 448.0f;
    ASSERT_EQ(again, s) << amax;
  }
}

TEST(Fp8, NonFiniteWeightsAreRefused) {
  std::vector<float> w = random_matrix(4, 4, 3, 1.0f);
  w[5] = std::numeric_limits<float>::infinity();
  std::vector<uint8_t> q(16);
  std::vector<float> s(1);
  EXPECT_THROW(fp8_quantize<float>(w.data(), 4, 4, Fp8BlockFormat{}, q.data(), s.data()), Error);
}

}  // namespace
}  // namespace aha
