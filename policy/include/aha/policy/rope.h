// Rotary position embedding (RoPE) with the scalings of the configs aha reads: linear, YaRN
// (DeepSeek) and llama3.
#pragma once

#include <cstdint>
#include <vector>

#include "aha/policy/model_config.h"

namespace aha::policy {

// Interleaved pairs (x[2i], x[2i+1]) as in DeepSeek's reference, or rotate-half pairs
// (x[i], x[i + dim/2]) as in Llama/Qwen2.
enum class RopeStyle { kInterleaved, kHalf };

// cos/sin tables for positions [0, max_pos) with the config's scaling (linear, YaRN incl. its
// cos/sin mscale, llama3). Immutable after construction; thread-safe.
class RopeTable {
 public:
  RopeTable(const ModelConfig& config, int max_pos);
  int dim() const { return dim_; }
  int max_pos() const { return max_pos_; }
  RopeStyle style() const { return style_; }
  const double* inv_freq() const { return inv_freq_.data(); }
  // Rotates `n_heads` vectors of `dim` values per token, in place; row t is at x + t*row_stride,
  // heads `head_stride` apart. inverse=true applies the transpose (the backward).
  template <typename T>
  void apply(T* x, const int32_t* positions, int64_t n_tokens, int n_heads, int64_t row_stride,
             int64_t head_stride, bool inverse) const {
    apply(x, positions, n_tokens, n_heads, row_stride, head_stride, inverse, style_);
  }
  // The same frequencies in another pairing: DSA's indexer rotates rotate-half pairs on a model
  // whose MLA rotates interleaved ones.
  template <typename T>
  void apply(T* x, const int32_t* positions, int64_t n_tokens, int n_heads, int64_t row_stride,
             int64_t head_stride, bool inverse, RopeStyle style) const;

 private:
  int dim_;
  int max_pos_;
  RopeStyle style_;
  std::vector<double> inv_freq_;  // [dim/2]
  std::vector<float> cos_;        // [max_pos, dim/2]
  std::vector<float> sin_;
};

// YaRN's attention-magnitude correction 0.1 * mscale * ln(scale) + 1 (1 for scale <= 1): it
// scales the cos/sin tables and, through mscale_all_dim, the softmax (ModelConfig::softmax_scale).
double yarn_mscale(double scale, double mscale);

}  // namespace aha::policy
