// `quantization_config` of config.json: DeepSeek-V3's FP8 block-quantized weights
// (quant_method "fp8", fmt "e4m3", weight_block_size [n, k], optional scale_fmt "ue8m0").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/fp8.h"

namespace aha::policy {

// The FP8 block format a config.json declares; nullopt when it has no quantization_config (or
// null). Throws aha::Error naming the key for an unknown quant_method, fmt or scale_fmt, or a
// weight_block_size that is not two positive integers.
std::optional<Fp8BlockFormat> fp8_format_of(const Json& config);

// `config` with its quantization_config set to `f` (other keys of an existing fp8 entry such as
// activation_scheme kept), or removed when f is nullopt.
void set_quantization_config(Json& config, const std::optional<Fp8BlockFormat>& f);

// Whether save_model stores this tensor in FP8: the 2-D weights of linear layers, as DeepSeek's
// releases do; not embeddings, lm_head, the router gate, MTP's eh_proj and shared_head, or the
// V3.2 indexer's weights_proj.
bool is_fp8_weight(const std::string& name, const std::vector<int64_t>& shape);

// "X.weight" -> "X.weight_scale_inv", the name of its block scales.
inline std::string fp8_scale_name(const std::string& weight) { return weight + "_scale_inv"; }

}  // namespace aha::policy
