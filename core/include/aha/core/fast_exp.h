// exp without a library call, so that loops over it vectorise; and a sum of its results in a fixed
// order that vectorises too (LaneSum).
// glibc's expf/exp are scalar calls: in a training step the SwiGLU sigmoids and the LM head's
// softmax spent ~6% of the time in them. These are Cephes' range reduction and polynomials,
// built from adds, multiplies and integer shifts only: SSE2 vectorises them already, and
// -march=native gives AVX-512. Elementwise: a value does not depend on its neighbours, and the
// vector body and the scalar remainder give the same bits (checked over 2^16 inputs for the
// SwiGLU and LM-head loops, SSE2, AVX2 and AVX-512), so decode stays batch-invariant. The
// sampler's softmax uses the double form too.
// Accuracy, measured against long-double expl: float within 1.03 ulp over [-87, 88]; double
// within 2e-16 relative over [-700, 700].
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace aha {

// e^x with x clamped to [lo, hi] (float: [-87.3, 88]; double: [-708, 709]): at the low end the
// result is the smallest normal's neighbourhood (~1e-38, ~1e-308) instead of a denormal or 0,
// at the high end finite. A NaN gives a NaN. Make one per loop, outside it.
template <typename T>
class VecExp {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);

 public:
  VecExp() {
    lo_ = std::is_same_v<T, float> ? T(-87.3) : T(-708);
    hi_ = std::is_same_v<T, float> ? T(88) : T(709);
    // Hide the bounds from the optimiser: with constant bounds GCC threads the clamped paths
    // into constants, and that control flow stops the vectoriser below AVX-512.
    asm("" : "+g"(lo_), "+g"(hi_));
  }

  T operator()(T x) const {
    x = std::min(std::max(x, lo_), hi_);
    if constexpr (std::is_same_v<T, float>) {
      constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
      constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
      const float t = x * kLog2e + kRound;
      const float n = t - kRound;
      const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound);
      const float r = x - n * kC1 - n * kC2;  // n * kC1 is exact
      float p = 1.9875691500e-4f;
      p = p * r + 1.3981999507e-3f;
      p = p * r + 8.3334519073e-3f;
      p = p * r + 4.1665795894e-2f;
      p = p * r + 1.6666665459e-1f;
      p = p * r + 5.0000001201e-1f;
      return (p * r * r + r + 1.0f) * std::bit_cast<float>((ni + 127) << 23);
    } else {
      constexpr double kLog2e = 1.4426950408889634, kLn2Hi = 6.93145751953125e-1;
      constexpr double kLn2Lo = 1.42860682030941723212e-6;
      constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52
      const double t = x * kLog2e + kRound;
      const double n = t - kRound;
      const int64_t ni = std::bit_cast<int64_t>(t) - std::bit_cast<int64_t>(kRound);
      const double r = x - n * kLn2Hi - n * kLn2Lo;
      // Taylor to degree 13 on |r| <= ln2 / 2: the truncation is below 1e-17 relative.
      double p = 1.0 / 6227020800.0;
      for (double inv_k :
           {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
            1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0}) {
        p = p * r + inv_k;
      }
      return p * std::bit_cast<double>((ni + 1023) << 52);
    }
  }

 private:
  T lo_, hi_;
};

// A sum of doubles in one fixed order that vectorises: value i of the sequence goes to lane i % 8
// (each lane adds its values in order), and total() adds the lanes by one fixed tree (lane l +
// lane l+4, then +2, +1). One chain, every add waiting on the one before, was most of the
// sampler's time per token (2,048 adds at 4 cycles each, twice a token). The bits depend on the
// values and their order alone: every build (SSE2, AVX2, AVX-512) adds the same lanes.
class LaneSum {
 public:
  // Adds v[0, n) as the next n values; every call but the last gives a multiple of 8.
  void add(const double* v, int64_t n) {
    typedef double V8 __attribute__((vector_size(64)));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      V8 x;
      __builtin_memcpy(&x, v + i, sizeof(x));
      acc_ += x;
    }
    for (int l = 0; i < n; ++i, ++l) acc_[l] += v[i];
  }
  double total() const {
    double l[8];
    __builtin_memcpy(l, &acc_, sizeof(l));
    for (int w = 4; w >= 1; w /= 2) {
      for (int i = 0; i < w; ++i) l[i] += l[i + w];
    }
    return l[0];
  }

 private:
  double acc_ __attribute__((vector_size(64))) = {};
};

// The largest z[j] * inv_temp as a double, 8 lanes at a time (one chain of compares waited on
// each one's latency, a third of the LM head's softmax statistics): the max is exact, so any
// order gives the serial loop's value, and a lane updates as std::max does, passing a NaN over.
// The sampler's softmax and the trainer's take it from here, so both start from one max.
inline double scaled_max(const float* z, int64_t n, double inv_temp) {
  typedef double V8 __attribute__((vector_size(64)));
  typedef float F8 __attribute__((vector_size(32)));
  constexpr double kLow = -std::numeric_limits<double>::infinity();
  V8 m8 = {kLow, kLow, kLow, kLow, kLow, kLow, kLow, kLow};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    F8 f;
    std::memcpy(&f, z + i, sizeof(f));
    const V8 v = __builtin_convertvector(f, V8) * inv_temp;
    m8 = m8 < v ? v : m8;
  }
  double mx = kLow;
  for (int l = 0; l < 8; ++l) mx = std::max(mx, m8[l]);
  for (; i < n; ++i) mx = std::max(mx, double(z[i]) * inv_temp);
  return mx;
}

inline double scaled_max(const double* z, int64_t n, double inv_temp) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, z[i] * inv_temp);
  return mx;
}

}  // namespace aha
