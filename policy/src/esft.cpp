// ESFT: expert scoring on task data, expert selection by routing-mass share, the trainable mask.
#include "aha/policy/esft.h"

#include <algorithm>
#include <numeric>

#include "aha/core/error.h"

namespace aha::policy {

EsftMetric parse_esft_metric(const std::string& name) {
  if (name == "gate") return EsftMetric::kGate;
  if (name == "token") return EsftMetric::kToken;
  fail("esft.metric must be gate or token, got '", name, "'");
}

template <typename T>
ExpertScores expert_scores(const Model<T>& model, const std::vector<Batch>& batches,
                           EsftMetric metric) {
  const ModelConfig& c = model.config();
  ExpertScores out;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    if (model.layers()[l].moe) out.layers.push_back(l);
  }
  if (out.layers.empty()) fail("ESFT needs an MoE model; ", c.type_name(), " has no MoE layer");
  if (batches.empty()) fail("ESFT needs task data to score the experts");
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  out.score.assign(out.layers.size(), std::vector<double>(E, 0.0));
  Activations<T> acts;
  for (const Batch& b : batches) {
    model.forward(b, ForwardOptions{}, acts);
    out.n_tokens += b.n_tokens();
    for (size_t m = 0; m < out.layers.size(); ++m) {
      const MoeActs<T>& a = acts.layers[out.layers[m]].moe;
      for (int64_t t = 0; t < b.n_tokens(); ++t) {
        const int32_t* tk = a.topk.data() + t * K;
        const T* w = a.weights.data() + t * K;
        double sum = 0;
        for (int k = 0; k < K; ++k) sum += double(w[k]);
        for (int k = 0; k < K; ++k) {
          // Combine weights carry routed_scaling_factor; per token they are made to sum to 1.
          out.score[m][tk[k]] +=
              metric == EsftMetric::kGate ? (sum > 0 ? double(w[k]) / sum : 1.0 / K) : 1.0 / K;
        }
      }
    }
  }
  for (auto& layer : out.score) {
    double total = std::accumulate(layer.begin(), layer.end(), 0.0);
    for (double& s : layer) s = total > 0 ? s / total : 0.0;
  }
  return out;
}

Json EsftSelection::to_json() const {
  return Json{{"layers", layers},
              {"experts", experts},
              {"covered", covered},
              {"include_shared", include_shared},
              {"share", share}};
}

EsftSelection EsftSelection::from_json(const Json& j) {
  EsftSelection s;
  s.layers = j.at("layers").get<std::vector<int>>();
  s.experts = j.at("experts").get<std::vector<std::vector<int32_t>>>();
  s.covered = j.at("covered").get<std::vector<double>>();
  s.include_shared = j.at("include_shared").get<bool>();
  s.share = j.at("share").get<double>();
  if (s.experts.size() != s.layers.size()) fail("esft selection: layers and experts differ");
  return s;
}

EsftSelection select_experts(const ExpertScores& scores, double share, bool include_shared) {
  if (!(share > 0 && share <= 1)) fail("esft.share must be in (0, 1], got ", share);
  EsftSelection sel;
  sel.layers = scores.layers;
  sel.include_shared = include_shared;
  sel.share = share;
  for (const auto& layer : scores.score) {
    std::vector<int32_t> order(layer.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return layer[a] > layer[b]; });
    std::vector<int32_t> picked;
    double covered = 0;
    // A small slack so that a share of exactly 1.0 is reached despite rounding.
    for (int32_t e : order) {
      if (covered >= share - 1e-12) break;
      picked.push_back(e);
      covered += layer[e];
    }
    sel.experts.push_back(std::move(picked));
    sel.covered.push_back(covered);
  }
  return sel;
}

template <typename T>
std::vector<uint8_t> trainable_mask(const Model<T>& model, const EsftSelection& sel) {
  std::vector<std::string> prefixes;
  for (size_t m = 0; m < sel.layers.size(); ++m) {
    const int l = sel.layers[m];
    if (l < 0 || l >= model.config().num_hidden_layers || !model.layers()[l].moe) {
      fail("esft selection names layer ", l, ", which is not an MoE layer of this model");
    }
    const std::string pre = "model.layers." + std::to_string(l) + ".mlp.";
    for (int32_t e : sel.experts[m]) {
      if (e < 0 || e >= model.config().n_routed_experts) fail("esft selection: expert ", e);
      prefixes.push_back(pre + "experts." + std::to_string(e) + ".");
    }
    if (sel.include_shared && model.layers()[l].moe_p.has_shared) {
      prefixes.push_back(pre + "shared_experts.");
    }
  }
  const auto& entries = model.table().entries();
  std::vector<uint8_t> mask(entries.size(), 0);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].trainable) continue;
    for (const std::string& p : prefixes) {
      if (entries[i].name.rfind(p, 0) == 0) mask[i] = 1;
    }
  }
  return mask;
}

template <typename T>
void apply_mask(const ParamTable& table, const std::vector<uint8_t>& mask, T* grads) {
  const auto& entries = table.entries();
  AHA_CHECK(mask.size() == entries.size(), "mask ", mask.size(), " entries ", entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!mask[i]) std::fill_n(grads + entries[i].offset, entries[i].numel, T(0));
  }
}

template <typename T>
void freeze_optimizer(Optimizer<T>& opt, const ParamTable& table,
                      const std::vector<uint8_t>& mask) {
  const auto& entries = table.entries();
  AHA_CHECK(mask.size() == entries.size(), "mask ", mask.size(), " entries ", entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!mask[i] && entries[i].trainable) opt.set_trainable(entries[i].name, false);
  }
}

Json EsftReport::to_json() const {
  return Json{{"trainable_params", trainable_params},
              {"total_params", total_params},
              {"trainable_share", trainable_share},
              {"grad_and_optimizer_bytes_full", grad_and_optimizer_bytes_full},
              {"grad_and_optimizer_bytes_esft", grad_and_optimizer_bytes_esft},
              {"memory_saved_bytes", memory_saved_bytes}};
}

EsftReport esft_report(const ParamTable& table, const std::vector<uint8_t>& mask) {
  EsftReport r;
  const auto& entries = table.entries();
  AHA_CHECK(mask.size() == entries.size(), "mask ", mask.size(), " entries ", entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].trainable) continue;
    r.total_params += static_cast<int64_t>(entries[i].numel);
    if (mask[i]) r.trainable_params += static_cast<int64_t>(entries[i].numel);
  }
  r.trainable_share = r.total_params > 0 ? double(r.trainable_params) / double(r.total_params) : 0;
  constexpr int64_t kBytesPerParam = 3 * sizeof(float);  // gradient, AdamW m, AdamW v
  r.grad_and_optimizer_bytes_full = r.total_params * kBytesPerParam;
  r.grad_and_optimizer_bytes_esft = r.trainable_params * kBytesPerParam;
  r.memory_saved_bytes = r.grad_and_optimizer_bytes_full - r.grad_and_optimizer_bytes_esft;
  return r;
}

#define AHA_INSTANTIATE_ESFT(T)                                                                   \
  template ExpertScores expert_scores<T>(const Model<T>&, const std::vector<Batch>&, EsftMetric); \
  template std::vector<uint8_t> trainable_mask<T>(const Model<T>&, const EsftSelection&);         \
  template void apply_mask<T>(const ParamTable&, const std::vector<uint8_t>&, T*);                \
  template void freeze_optimizer<T>(Optimizer<T>&, const ParamTable&, const std::vector<uint8_t>&);

AHA_INSTANTIATE_ESFT(float)
AHA_INSTANTIATE_ESFT(double)

}  // namespace aha::policy
