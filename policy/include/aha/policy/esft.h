// ESFT, expert-specialised fine-tuning (Wang et al. 2024, DeepSeek): rank the routed experts of
// every MoE layer by how much of the routing mass they receive on the task data, train only the
// top experts that together cover a chosen share of that mass (plus, optionally, the shared
// experts) and freeze everything else: attention, norms, embeddings, routers, dense MLPs and the
// other experts. Used by `aha distill train` (SFT of the MoE itself) and by GRPO.
//
// Usage:
//   auto scores = expert_scores(model, batches, EsftMetric::kGate);   // forward passes only
//   EsftSelection sel = select_experts(scores, 0.9, /*include_shared=*/true);
//   std::vector<uint8_t> mask = trainable_mask(model, sel);            // per ParamTable entry
//   freeze_optimizer(opt, model.table(), mask);                        // once
//   ...each step: backward; apply_mask(model.table(), mask, grads); clip; opt.step(...)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"

namespace aha::policy {

// ESFT-Gate: mean combine weight an expert receives per token (0 where it is not selected),
// the weights of a token normalised to sum to 1. ESFT-Token: share of tokens routed to it.
enum class EsftMetric { kGate, kToken };
EsftMetric parse_esft_metric(const std::string& name);  // "gate" | "token"

struct ExpertScores {
  std::vector<int> layers;                 // model layer index of each MoE layer
  std::vector<std::vector<double>> score;  // [moe layer][expert], each layer sums to 1
  int64_t n_tokens = 0;                    // tokens the scores were measured on
};

// Scores the routed experts of every MoE layer over the given batches (forward only).
// Throws aha::Error when the model has no MoE layer or the batches are empty.
template <typename T>
ExpertScores expert_scores(const Model<T>& model, const std::vector<Batch>& batches,
                           EsftMetric metric = EsftMetric::kGate);

struct EsftSelection {
  std::vector<int> layers;                    // model layer index of each MoE layer
  std::vector<std::vector<int32_t>> experts;  // [moe layer] selected experts, best first
  std::vector<double> covered;                // [moe layer] routing mass they cover
  bool include_shared = true;
  double share = 0;
  Json to_json() const;
  static EsftSelection from_json(const Json& j);
};

// Per layer, the fewest experts (best first) whose scores sum to >= share; share in (0, 1].
EsftSelection select_experts(const ExpertScores& scores, double share, bool include_shared);

// 1 for every ParamTable entry ESFT trains (selected routed experts, shared experts when
// include_shared), 0 for the rest. Entries already non-trainable (buffers) stay 0.
template <typename T>
std::vector<uint8_t> trainable_mask(const Model<T>& model, const EsftSelection& selection);

// Zeroes the gradient of every masked-out entry (before clipping, so frozen tensors do not count
// in the gradient norm).
template <typename T>
void apply_mask(const ParamTable& table, const std::vector<uint8_t>& mask, T* grads);

// Marks masked-out entries frozen in the optimizer: they are never updated (no weight decay).
template <typename T>
void freeze_optimizer(Optimizer<T>& opt, const ParamTable& table, const std::vector<uint8_t>& mask);

struct EsftReport {
  int64_t trainable_params = 0, total_params = 0;
  double trainable_share = 0;
  // What a trainer keeps only for trainable parameters: gradient + AdamW m and v, in fp32.
  int64_t grad_and_optimizer_bytes_full = 0, grad_and_optimizer_bytes_esft = 0;
  int64_t memory_saved_bytes = 0;
  Json to_json() const;
};
EsftReport esft_report(const ParamTable& table, const std::vector<uint8_t>& mask);

}  // namespace aha::policy
