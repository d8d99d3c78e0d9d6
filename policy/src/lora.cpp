// The `lora` config object: which linear layers get adapters and their scale.
#include "aha/policy/lora.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "aha/core/error.h"
#include "aha/core/rng.h"

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

namespace {

std::atomic<const void*> g_dropout_params{nullptr};
std::atomic<uint64_t> g_dropout_seed{0};
std::atomic<const void*> g_off_params{nullptr};

}  // namespace

LoraDropoutScope::LoraDropoutScope(const void* params, uint64_t seed) {
  AHA_CHECK(g_dropout_params.load() == nullptr, "nested LoRA dropout scopes");
  g_dropout_seed.store(seed);
  g_dropout_params.store(params);
}

LoraDropoutScope::~LoraDropoutScope() { g_dropout_params.store(nullptr); }

LoraOffScope::LoraOffScope(const void* params) {
  AHA_CHECK(g_off_params.load() == nullptr, "nested LoRA-off scopes");
  g_off_params.store(params);
}

LoraOffScope::~LoraOffScope() { g_off_params.store(nullptr); }

bool lora_off(const void* params) { return params != nullptr && g_off_params.load() == params; }

bool lora_dropout_active(const void* params, uint64_t* seed) {
  if (params == nullptr || g_dropout_params.load() != params) return false;
  *seed = g_dropout_seed.load();
  return true;
}

double lora_dropout_mask(uint64_t seed, size_t lora_a, uint64_t i, double p) {
  const uint64_t h =
      splitmix64_mix(seed ^ splitmix64_mix(uint64_t(lora_a) + 0x9E3779B97F4A7C15ULL) ^
                     (i * 0xD6E8FEB86659FD93ULL));
  // The top 53 bits as a uniform in [0, 1).
  const double u = double(h >> 11) * (1.0 / 9007199254740992.0);
  return u < p ? 0.0 : 1.0 / (1.0 - p);
}

}  // namespace aha::policy
