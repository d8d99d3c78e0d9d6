// parallel.ep: parsing and checks against the ranks and the model.
#include "aha/train/expert_parallel.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "aha/core/dist.h"
#include "aha/core/error.h"

namespace aha::train {

ParallelConfig ParallelConfig::from_json(const Json& j) {
  StrictReader r(j, "parallel");
  ParallelConfig p;
  p.ep = r.get<int>("ep", 1);
  r.finish();
  if (p.ep < 1) fail("parallel.ep must be >= 1, got ", p.ep);
  return p;
}

policy::ExpertParallel expert_parallel_for(const ParallelConfig& p, const policy::ModelConfig& c,
                                           bool sharded) {
  if (!p.expert_parallel()) return {};
  if (p.ep != dist::size()) {
    fail("parallel.ep = ", p.ep, " must equal the number of ranks (", dist::size(),
         "): run under mpirun -np ", p.ep, " (expert x data parallel groups are not supported)");
  }
  if (c.n_routed_experts == 0) fail("parallel.ep needs an MoE model (n_routed_experts > 0)");
  if (c.n_routed_experts % p.ep != 0) {
    fail("parallel.ep = ", p.ep, " must divide n_routed_experts (", c.n_routed_experts, ")");
  }
  if (c.topk_devices < c.n_devices && c.n_devices != p.ep) {
    fail("parallel.ep = ", p.ep, " must equal the model's n_devices (", c.n_devices,
         ") when topk_devices limits each token's devices");
  }
  if (c.lora.rank > 0) fail("parallel.ep does not support LoRA adapters yet");
  if (sharded && c.num_nextn_predict_layers > 0) {
    fail("parallel.ep does not support a model with MTP layers (num_nextn_predict_layers) yet");
  }
  return {dist::rank(), p.ep, sharded};
}

policy::ExpertParallel expert_parallel_for(const ParallelConfig& p, const std::string& dir,
                                           bool sharded) {
  if (!p.expert_parallel()) return {};
  return expert_parallel_for(
      p, policy::ModelConfig::load((std::filesystem::path(dir) / "config.json").string()),
      sharded);
}

void check_device_balance(const ParallelConfig& p, const policy::ModelConfig& c) {
  if (!c.has_device_balance() || p.expert_parallel() || dist::size() == 1) return;
  fail(c.device_balance_alpha > 0 ? "device_balance_alpha" : "comm_balance_alpha",
       " (config.json) needs parallel.ep = ", dist::size(), " under mpirun -np ", dist::size(),
       ": its statistics are over the whole batch, which only expert parallelism gathers");
}

namespace {

// The routed experts' values of each MoE layer, [begin, end) in params(): experts are added in
// order, so expert block r of ep.size is the r-th of as many equal parts.
std::vector<std::pair<size_t, size_t>> expert_spans(const policy::Model<float>& model) {
  const policy::ModelConfig& c = model.config();
  // Sharded: only this rank's block has storage.
  const int first = c.ep.sharded ? c.ep.first(c.n_routed_experts) : 0;
  const int n = c.ep.sharded ? c.ep.n_local(c.n_routed_experts) : c.n_routed_experts;
  std::vector<std::pair<size_t, size_t>> spans;
  for (const policy::LayerP& lp : model.layers()) {
    if (!lp.moe) continue;
    const policy::LinearP& last = lp.moe_p.experts[first + n - 1].down_proj;
    const size_t begin = lp.moe_p.experts[first].gate_proj.w;
    const size_t end = last.w + size_t(last.n_in) * size_t(last.n_out);
    const size_t per = 3 * size_t(c.hidden_size) * size_t(c.moe_intermediate_size);
    AHA_CHECK(end - begin == per * size_t(n), "experts not contiguous");
    spans.emplace_back(begin, end);
  }
  return spans;
}

}  // namespace

ExpertShards::ExpertShards(const policy::Model<float>& model)
    : rank_(model.expert_parallel().rank),
      size_(model.expert_parallel().size),
      sharded_(model.config().ep.sharded) {
  if (on()) spans_ = expert_spans(model);
}

std::vector<size_t> ExpertShards::entries_of(const policy::ParamTable& table, int r) const {
  std::vector<size_t> out;
  if (sharded_ && r != rank_) return out;  // only this rank's experts are in the table
  const auto& entries = table.entries();
  const int blocks = sharded_ ? 1 : size_;
  if (sharded_) r = 0;
  for (size_t k = 0; k < entries.size(); ++k) {
    for (auto [b, e] : spans_) {
      const size_t per = (e - b) / blocks;
      if (entries[k].offset >= b + r * per && entries[k].offset < b + (r + 1) * per)
        out.push_back(k);
    }
  }
  return out;
}

std::vector<uint8_t> ExpertShards::held(const policy::ParamTable& table) const {
  std::vector<uint8_t> held(table.entries().size(), 1);
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    for (size_t k : entries_of(table, r)) held[k] = 0;
  }
  return held;
}

void ExpertShards::outside(size_t begin, size_t end,
                           const std::function<void(size_t, size_t)>& f) const {
  size_t at = begin;
  for (auto [b, e] : spans_) {  // spans are disjoint and in order
    if (e <= at || b >= end) continue;
    if (b > at) f(at, b);
    at = std::max(at, e);
  }
  if (at < end) f(at, end);
}

double ExpertShards::clip_grad_norm(const policy::ParamTable& table, float* grads,
                                    double max_norm) const {
  double ss[2] = {0, 0};  // replicated, this rank's experts
  const std::vector<uint8_t> mine = [&] {
    std::vector<uint8_t> m(table.entries().size(), 0);
    for (size_t k : entries_of(table, rank_)) m[k] = 1;
    return m;
  }();
  const std::vector<uint8_t> keep = held(table);
  for (size_t k = 0; k < table.entries().size(); ++k) {
    const policy::ParamEntry& e = table.entries()[k];
    if (!e.trainable || !keep[k]) continue;
    double s = 0;
    for (size_t i = 0; i < e.numel; ++i) s += double(grads[e.offset + i]) * grads[e.offset + i];
    ss[mine[k]] += s;
  }
  dist::allreduce_sum(&ss[1], 1, "expert gradient norm");
  const double norm = std::sqrt(ss[0] + ss[1]);
  if (!std::isfinite(norm) || max_norm <= 0 || norm <= max_norm) return norm;
  const float scale = static_cast<float>(max_norm / (norm + 1e-6));
  for (const policy::ParamEntry& e : table.entries()) {
    for (size_t i = 0; i < e.numel; ++i) grads[e.offset + i] *= scale;
  }
  return norm;
}

ExpertShards::Gathered ExpertShards::gather_moments(const policy::Optimizer<float>& opt,
                                                    const policy::ParamTable& table) const {
  Gathered g;
  std::string mine;
  for (size_t k : entries_of(table, rank_)) {
    const size_t bytes = table.entries()[k].numel * sizeof(float);
    if (opt.exp_avg(k) == nullptr) continue;  // SGD: no moments anywhere
    mine.append(reinterpret_cast<const char*>(opt.exp_avg(k)), bytes);
    mine.append(reinterpret_cast<const char*>(opt.exp_avg_sq(k)), bytes);
  }
  const std::vector<std::string> all = dist::gather_to_root(mine, "optimizer moments");
  if (all.empty() || mine.empty()) return g;
  size_t total = 0;
  for (const std::string& s : all) total += s.size() / sizeof(float);
  g.data.resize(total);
  size_t at = 0;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) {
      at += all[r].size() / sizeof(float);
      continue;
    }
    std::memcpy(g.data.data() + at, all[r].data(), all[r].size());
    for (size_t k : entries_of(table, r)) {
      const size_t n = table.entries()[k].numel;
      g.moments.push_back({k, g.data.data() + at, g.data.data() + at + n});
      at += 2 * n;
    }
  }
  return g;
}

}  // namespace aha::train
