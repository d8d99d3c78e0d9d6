// Built-in model configurations (DeepSeek-V3 layout: MLA + DeepSeekMoE) used by benchmarks,
// tests and the demo: tiny (~1M parameters), small (~10M), base (~100M).
#pragma once

#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/policy/model_config.h"

namespace aha::policy {

std::vector<std::string> preset_names();
// The config.json of a preset; throws aha::Error naming the known presets.
Json preset_config(const std::string& name);

// Matrix-multiply FLOPs of one forward pass over sequences of the given lengths (routed experts
// counted K times per token, causal attention counted over its lower triangle).
double forward_flops(const ModelConfig& c, const std::vector<int64_t>& seq_lens);

// forward_flops split by where the work is: the attention sublayers (projections and the causal
// score and value products), the MoE or dense MLP sublayers (router included), the LM head,
// and the rest (hyper-connection mixes, Engram projections). The parts sum to forward_flops.
struct ForwardFlops {
  double attention = 0, ffn = 0, lm_head = 0, other = 0;
  double total() const { return attention + ffn + lm_head + other; }
};
ForwardFlops forward_flops_parts(const ModelConfig& c, const std::vector<int64_t>& seq_lens);

}  // namespace aha::policy
