// LoRA (Hu et al. 2021): low-rank adapters on chosen linear layers, y = x W^T + s (x A^T) B^T
// with A [rank, n_in], B [n_out, rank] and s = alpha / rank (alpha / sqrt(rank) with rsLoRA).
// With adapters on, the base weights are frozen: only A and B learn (see docs/model.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/core/config.h"

namespace aha::policy {

struct LoraConfig {
  int rank = 0;  // 0: no adapters
  double alpha = 16;
  // Applied to the adapter's input in the update's forward only; sampling and the logprobs
  // recorded at sampling use no dropout (docs/model.md).
  double dropout = 0;
  // HF module names (q_proj, kv_a_proj_with_mqa, kv_b_proj, q_a_proj, q_b_proj, o_proj, k_proj,
  // v_proj, gate_proj, up_proj, down_proj); the MLP names cover dense and shared-expert MLPs.
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
  bool target_experts = false;  // also the routed experts' gate/up/down_proj
  bool use_rslora = false;      // s = alpha / sqrt(rank)
  std::string base_model;       // written as adapter_config.json's base_model_name_or_path
  std::string adapter;          // a PEFT adapter directory to start from ("": PEFT's init)

  bool on() const { return rank > 0; }
  double scale() const;
  // Whether the linear layer named `prefix` (model.layers.3.self_attn.q_proj) gets an adapter.
  bool targets(const std::string& prefix) const;
  // Strict: an unknown key or a bad value throws aha::Error naming it ("lora.rnak").
  static LoraConfig from_json(const Json& j);
  Json to_json() const;
};

// LoRA dropout (lora.dropout = p > 0) in the update's forward and backward only: while a scope
// lives, the adapters of the model whose parameter block starts at `params` see their input
// with each element dropped with probability p and the rest scaled by 1 / (1 - p). The mask is
// a counter-based hash of the seed, the adapter and the element, so backward recomputes the
// forward's mask and no thread count or batch split changes it. Every other model (the sampler
// of asynchronous rollouts has its own block), the decode path and the logprobs recorded at
// sampling or recomputed as pi_old see no dropout. One scope at a time.
class LoraDropoutScope {
 public:
  LoraDropoutScope(const void* params, uint64_t seed);
  ~LoraDropoutScope();
  LoraDropoutScope(const LoraDropoutScope&) = delete;
  LoraDropoutScope& operator=(const LoraDropoutScope&) = delete;
};
// While one lives, the model whose parameter block starts at `params` computes without its
// adapters: the base it was loaded with, which under LoRA is the KL reference (PEFT's
// disable_adapter), so no second copy of the base is needed. One scope at a time.
class LoraOffScope {
 public:
  explicit LoraOffScope(const void* params);
  ~LoraOffScope();
  LoraOffScope(const LoraOffScope&) = delete;
  LoraOffScope& operator=(const LoraOffScope&) = delete;
};
bool lora_off(const void* params);
// Whether a scope is active for this parameter block, and its seed.
bool lora_dropout_active(const void* params, uint64_t* seed);
// The mask multiplier (0 or 1 / (1 - p)) of element i of the input of the adapter whose A
// starts at offset lora_a.
double lora_dropout_mask(uint64_t seed, size_t lora_a, uint64_t i, double p);

}  // namespace aha::policy
