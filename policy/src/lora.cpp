// The `lora` config object: which linear layers get adapters and their scale.
#include "aha/policy/lora.h"

#include <algorithm>
#include <cmath>

#include "aha/core/error.h"

namespace aha::policy {

namespace {

// The module names a LinearP can carry (the last component of its HF prefix).
const std::vector<std::string> kLoraModules = {
    "q_proj", "k_proj",  "v_proj",    "o_proj",  "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa",
    "kv_b_proj", "gate_proj", "up_proj", "down_proj"};

}  // namespace

double LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(double(rank)) : alpha / double(rank);
}

bool LoraConfig::targets(const std::string& prefix) const {
  if (!on()) return false;
  const size_t dot = prefix.rfind('.');
  const std::string module = dot == std::string::npos ? prefix : prefix.substr(dot + 1);
  if (std::find(target_modules.begin(), target_modules.end(), module) == target_modules.end()) {
    return false;
  }
  // Routed experts only on request (target_experts): their adapters multiply with n_experts.
  return target_experts || prefix.find(".experts.") == std::string::npos;
}

LoraConfig LoraConfig::from_json(const Json& j) {
  StrictReader r(j, "lora");
  LoraConfig c;
  c.rank = r.get<int>("rank", c.rank);
  c.alpha = r.get<double>("alpha", c.alpha);
  c.dropout = r.get<double>("dropout", c.dropout);
  c.target_modules = r.get<std::vector<std::string>>("target_modules", c.target_modules);
  c.target_experts = r.get<bool>("target_experts", c.target_experts);
  c.use_rslora = r.get<bool>("use_rslora", c.use_rslora);
  c.base_model = r.get<std::string>("base_model", c.base_model);
  c.adapter = r.get<std::string>("adapter", c.adapter);
  r.finish();
  if (c.rank < 0) fail("lora.rank must be >= 0 (0: no adapters)");
  if (!(c.alpha > 0)) fail("lora.alpha must be > 0");
  if (!(c.dropout >= 0 && c.dropout < 1)) fail("lora.dropout must be in [0, 1)");
  // Dropout would make the update's forward differ from the sampler's: not yet supported.
  if (c.dropout != 0) fail("lora.dropout: only 0 is supported (docs/model.md)");
  if (c.on() && c.target_modules.empty()) fail("lora.target_modules must not be empty");
  for (const std::string& m : c.target_modules) {
    if (std::find(kLoraModules.begin(), kLoraModules.end(), m) == kLoraModules.end()) {
      fail("lora.target_modules: unknown module '", m, "'");
    }
  }
  return c;
}

Json LoraConfig::to_json() const {
  return Json{{"rank", rank},
              {"alpha", alpha},
              {"dropout", dropout},
              {"target_modules", target_modules},
              {"target_experts", target_experts},
              {"use_rslora", use_rslora},
              {"base_model", base_model},
              {"adapter", adapter}};
}

}  // namespace aha::policy
