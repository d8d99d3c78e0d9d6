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

}  // namespace aha::policy
