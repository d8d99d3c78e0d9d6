// The training attention's float kernels for plain causal attention (attention_fused.cpp), which
// attention_forward/attention_backward<float> take where fused_attention_fits.
#pragma once

#include <cstdint>
#include <vector>

#include "aha/policy/attention.h"

namespace aha::policy {

// No window or key selection, head widths multiples of 16.
bool fused_attention_fits(const AttnShape& s);

void fused_attention_forward(const float* q, const float* k, const float* v, float* out, float* lse,
                             const std::vector<int64_t>& seq_starts, const AttnShape& s);

void fused_attention_backward(const float* dout, const float* q, const float* k, const float* v,
                              const float* out, const float* lse, float* dq, float* dk, float* dv,
                              const std::vector<int64_t>& seq_starts, const AttnShape& s);

}  // namespace aha::policy
