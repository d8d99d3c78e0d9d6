// Parsing and writing quantization_config; which tensors an FP8 checkpoint stores in FP8.
#include "aha/policy/quantization.h"

#include "aha/core/error.h"

namespace aha::policy {

std::optional<Fp8BlockFormat> fp8_format_of(const Json& config) {
  if (!config.is_object() || !config.contains("quantization_config")) return std::nullopt;
  const Json& q = config["quantization_config"];
  if (q.is_null()) return std::nullopt;
  const std::string where = "[config.json] quantization_config";
  if (!q.is_object()) fail(where, " must be an object");
  if (!q.contains("quant_method") || !q["quant_method"].is_string()) {
    fail(where, ".quant_method is missing (aha reads \"fp8\")");
  }
  const std::string method = q["quant_method"].get<std::string>();
  if (method != "fp8") {
    fail(where, ".quant_method '", method,
         "' is not supported (aha reads \"fp8\": ", "DeepSeek-V3's block-quantized E4M3 weights)");
  }
  if (q.contains("fmt") && !q["fmt"].is_null() && q["fmt"] != "e4m3") {
    fail(where, ".fmt ", q["fmt"].dump(), " is not supported (aha reads \"e4m3\")");
  }
  Fp8BlockFormat f;
  if (q.contains("scale_fmt") && !q["scale_fmt"].is_null()) {
    if (q["scale_fmt"] != "ue8m0") {
      fail(where, ".scale_fmt ", q["scale_fmt"].dump(), " is not supported (\"ue8m0\" or none)");
    }
    f.ue8m0 = true;
  }
  if (!q.contains("weight_block_size")) {
    fail(where, ".weight_block_size is missing (aha reads block-quantized FP8, e.g. [128, 128])");
  }
  const Json& b = q["weight_block_size"];
  constexpr int64_t kMaxBlock = 1 << 20;
  if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer() ||
      b[0].get<int64_t>() <= 0 || b[1].get<int64_t>() <= 0 || b[0].get<int64_t>() > kMaxBlock ||
      b[1].get<int64_t>() > kMaxBlock) {
    fail(where, ".weight_block_size must be two positive integers [n, k], got ", b.dump());
  }
  f.block_n = b[0].get<int>();
  f.block_k = b[1].get<int>();
  return f;
}

void set_quantization_config(Json& config, const std::optional<Fp8BlockFormat>& f) {
  if (!f) {
    config.erase("quantization_config");
    return;
  }
  Json q = Json::object();
  if (config.contains("quantization_config") && config["quantization_config"].is_object() &&
      config["quantization_config"].value("quant_method", "") == "fp8") {
    q = config["quantization_config"];
  }
  q["quant_method"] = "fp8";
  q["fmt"] = "e4m3";
  if (!q.contains("activation_scheme")) q["activation_scheme"] = "dynamic";
  q["weight_block_size"] = {f->block_n, f->block_k};
  if (f->ue8m0) {
    q["scale_fmt"] = "ue8m0";
  } else {
    q.erase("scale_fmt");
  }
  config["quantization_config"] = q;
}

bool is_fp8_weight(const std::string& name, const std::vector<int64_t>& shape) {
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (shape.size() != 2 || !ends_with(".weight")) return false;
  if (name == "lm_head.weight" || ends_with("embed_tokens.weight")) return false;
  if (has(".engram.multi_head_embedding.")) return false;  // a lookup table, like the embedding
  if (ends_with(".mlp.gate.weight")) return false;  // the router stays in high precision
  return !has(".eh_proj.") && !has(".shared_head.") && !has(".weights_proj.");
}

}  // namespace aha::policy
