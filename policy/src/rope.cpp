// Rotary position embedding: the cos/sin tables with the config's scaling (linear, YaRN with its
// cos/sin and softmax mscale corrections, llama3) and their application to query/key heads.
#include "aha/policy/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <type_traits>

#include "aha/core/error.h"
#include "aha/core/simd16.h"
#include "for_chunks.h"

namespace aha::policy {

double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

namespace {

double yarn_correction_dim(double n_rot, int dim, double base, double max_pos) {
  return dim * std::log(max_pos / (n_rot * 2 * std::numbers::pi)) / (2 * std::log(base));
}

}  // namespace

RopeTable::RopeTable(const ModelConfig& c, int max_pos)
    : dim_(c.rope_dim()),
      max_pos_(max_pos),
      style_(c.is_mla() ? RopeStyle::kInterleaved : RopeStyle::kHalf) {
  AHA_CHECK(dim_ % 2 == 0 && max_pos > 0, dim_, " ", max_pos);
  const int half = dim_ / 2;
  const double base = c.rope_theta;
  const RopeScaling& rs = c.rope_scaling;
  inv_freq_.resize(half);
  for (int i = 0; i < half; ++i) inv_freq_[i] = 1.0 / std::pow(base, 2.0 * i / dim_);
  double cs_scale = 1.0;
  if (rs.type == RopeType::kLinear) {
    for (double& f : inv_freq_) f /= rs.factor;
  } else if (rs.type == RopeType::kYarn) {
    double low = std::floor(
        yarn_correction_dim(rs.beta_fast, dim_, base, rs.original_max_position_embeddings));
    double high = std::ceil(
        yarn_correction_dim(rs.beta_slow, dim_, base, rs.original_max_position_embeddings));
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim_ - 1));
    if (low == high) high += 0.001;
    for (int i = 0; i < half; ++i) {
      double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      double extra_mask = 1.0 - ramp;  // 1: keep the original (extrapolated) frequency
      inv_freq_[i] = inv_freq_[i] / rs.factor * (1.0 - extra_mask) + inv_freq_[i] * extra_mask;
    }
    cs_scale = yarn_mscale(rs.factor, rs.mscale) / yarn_mscale(rs.factor, rs.mscale_all_dim);
  } else if (rs.type == RopeType::kLlama3) {
    const double old_ctx = rs.original_max_position_embeddings;
    const double low_wl = old_ctx / rs.low_freq_factor, high_wl = old_ctx / rs.high_freq_factor;
    for (double& f : inv_freq_) {
      double wl = 2 * std::numbers::pi / f;
      if (wl < high_wl) continue;
      if (wl > low_wl) {
        f /= rs.factor;
      } else {
        double smooth = (old_ctx / wl - rs.low_freq_factor) /
                        (rs.high_freq_factor - rs.low_freq_factor);
        f = (1 - smooth) * f / rs.factor + smooth * f;
      }
    }
  }
  cos_.resize(static_cast<size_t>(max_pos) * half);
  sin_.resize(cos_.size());
  for (int p = 0; p < max_pos; ++p) {
    for (int i = 0; i < half; ++i) {
      // Angles in float like the reference (positions and frequencies are fp32 there).
      float angle = static_cast<float>(p) * static_cast<float>(inv_freq_[i]);
      cos_[p * half + i] = static_cast<float>(std::cos(angle) * cs_scale);
      sin_[p * half + i] = static_cast<float>(std::sin(angle) * cs_scale);
    }
  }
}

namespace {

using simd16::V16;
typedef int32_t I16 __attribute__((vector_size(64)));

// One head's pairs under float, 16 values a vector, with the scalar loop's rounding (which the
// compiler made b's product, rounded, then one fused multiply-add: a' = fma(a, c, -(b s)),
// b' = fma(a, s, b c)), so the bits stay those of the loop below. The scalar loop reloaded b
// after every store to a (they might alias) and ran 2.5-3% of a bf16 prefill.
// Interleaved pairs (a0 b0 a1 b1 ...): eight pairs a vector, c and s laid out per lane.
void rotate_interleaved(float* v, const float* c, const float* s, int half, float sign) {
  const I16 even = {0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14};
  const I16 odd = even + 1;
  for (int i0 = 0; i0 < half; i0 += 8) {
    V16 cs = {}, sc = {};  // lanes (c_i, s_i) and (-s_i, c_i) per pair
    for (int i = 0; i < 8; ++i) {
      cs[2 * i] = c[i0 + i];
      cs[2 * i + 1] = sign * s[i0 + i];
      sc[2 * i] = -(sign * s[i0 + i]);
      sc[2 * i + 1] = c[i0 + i];
    }
    const V16 x = simd16::load16(v + 2 * i0);
    const V16 a = __builtin_shuffle(x, even), b = __builtin_shuffle(x, odd);
    simd16::store16(v + 2 * i0, simd16::fmadd(a, cs, b * sc));
  }
}

// Split halves (a_i at i, b_i at i + half): sixteen pairs a vector.
void rotate_half(float* v, const float* c, const float* s, int half, float sign) {
  for (int i = 0; i < half; i += 16) {
    const V16 a = simd16::load16(v + i), b = simd16::load16(v + i + half);
    const V16 ci = simd16::load16(c + i), si = simd16::load16(s + i) * sign;
    simd16::store16(v + i, simd16::fmadd(a, ci, -(b * si)));
    simd16::store16(v + i + half, simd16::fmadd(a, si, b * ci));
  }
}

}  // namespace

template <typename T>
void RopeTable::apply(T* x, const int32_t* positions, int64_t n_tokens, int n_heads,
                      int64_t row_stride, int64_t head_stride, bool inverse,
                      RopeStyle style) const {
  const int half = dim_ / 2;
  const int64_t i_stride = style == RopeStyle::kInterleaved ? 2 : 1;
  const int64_t pair_off = style == RopeStyle::kInterleaved ? 1 : half;
  const T sign = inverse ? T(-1) : T(1);
  const bool vectors = std::is_same_v<T, float> &&
                       half % (style == RopeStyle::kInterleaved ? 8 : 16) == 0;
  for_chunks(n_tokens, 64, [&](int64_t, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int32_t pos = positions[t];
      AHA_CHECK(pos >= 0 && pos < max_pos_, "position ", pos, " outside the RoPE table of ",
                max_pos_);
      const float* c = cos_.data() + static_cast<size_t>(pos) * half;
      const float* s = sin_.data() + static_cast<size_t>(pos) * half;
      for (int h = 0; h < n_heads; ++h) {
        T* v = x + t * row_stride + h * head_stride;
        if constexpr (std::is_same_v<T, float>) {
          if (vectors) {
            if (style == RopeStyle::kInterleaved) {
              rotate_interleaved(v, c, s, half, sign);
            } else {
              rotate_half(v, c, s, half, sign);
            }
            continue;
          }
        }
        for (int i = 0; i < half; ++i) {
          T& a = v[i * i_stride];
          T& b = v[i * i_stride + pair_off];
          T ci = static_cast<T>(c[i]), si = sign * static_cast<T>(s[i]);
          T a0 = a;
          a = a0 * ci - b * si;
          b = a0 * si + b * ci;
        }
      }
    }
  });
}

template void RopeTable::apply<float>(float*, const int32_t*, int64_t, int, int64_t, int64_t,
                                      bool, RopeStyle) const;
template void RopeTable::apply<double>(double*, const int32_t*, int64_t, int, int64_t, int64_t,
                                       bool, RopeStyle) const;

}  // namespace aha::policy
