// The training attention's float kernels for plain causal attention (attention_fused.cpp), which
// attention_forward/attention_backward<float> take where fused_attention_fits.
#pragma once

#include <cstdint>
#include <vector>

#include "aha/policy/attention.h"

namespace aha::policy {

// Row strides of q, k, v and out, and the query heads per kv head: both paths' layout.
struct AttnStrides {
  int64_t qs, ks, vs, os;
  int group;
};
inline AttnStrides attn_strides(const AttnShape& s) {
  return {int64_t{s.n_heads} * s.qk_dim, int64_t{s.n_kv_heads} * s.qk_dim,
          int64_t{s.n_kv_heads} * s.v_dim, int64_t{s.n_heads} * s.v_dim, s.n_heads / s.n_kv_heads};
}

// No window or key selection, head widths multiples of 16.
bool fused_attention_fits(const AttnShape& s);

void fused_attention_forward(const float* q, const float* k, const float* v, float* out, float* lse,
                             const std::vector<int64_t>& seq_starts, const AttnShape& s);

void fused_attention_backward(const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, float* dq, float* dk, float* dv,
                              const std::vector<int64_t>& seq_starts, const AttnShape& s);

}  // namespace aha::policy
