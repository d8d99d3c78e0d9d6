// The parameter table.
#include "aha/policy/params.h"

#include "aha/core/error.h"

namespace aha::policy {

size_t ParamTable::add(const std::string& name, std::vector<int64_t> shape, bool trainable) {
  return push(name, std::move(shape), trainable, total_);
}

void ParamTable::set_lora(const LoraConfig* lora, size_t base_total) {
  lora_ = lora;
  if (lora == nullptr) return;
  AHA_CHECK(entries_.empty() || adapter_end_ > 0, "set_lora after the first tensor");
  if (adapter_end_ == 0) adapter_begin_ = adapter_end_ = base_total;
}

size_t ParamTable::add_adapter(const std::string& name, std::vector<int64_t> shape) {
  AHA_CHECK(lora_ != nullptr, "add_adapter without set_lora: ", name);
  const size_t off = push(name, std::move(shape), true, adapter_end_);
  entries_.back().adapter = true;
  return off;
}

size_t ParamTable::push(const std::string& name, std::vector<int64_t> shape, bool trainable,
                        size_t& next) {
  AHA_CHECK(!index_.count(name), "duplicate parameter ", name);
  size_t n = 1;
  for (int64_t d : shape) {
    AHA_CHECK(d > 0, name);
    n *= static_cast<size_t>(d);
  }
  ParamEntry e{name, std::move(shape), next, n, trainable};
  index_[name] = entries_.size();
  entries_.push_back(std::move(e));
  // Keep every tensor 16-float aligned so SIMD loads of a row start on a cache line.
  next += (n + 15) / 16 * 16;
  AHA_CHECK(adapter_end_ == 0 || total_ <= adapter_begin_, "base tensors overrun the adapters");
  return entries_.back().offset;
}

void ParamTable::mark_sparse_rows(const std::string& name) {
  auto it = index_.find(name);
  AHA_CHECK(it != index_.end() && entries_[it->second].shape.size() == 2, name);
  entries_[it->second].sparse_rows = true;
}

const ParamEntry& ParamTable::at(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("no parameter named '", name, "'");
  return entries_[it->second];
}

LinearP add_linear(ParamTable& t, const std::string& prefix, int n_in, int n_out, bool bias) {
  LinearP p;
  p.n_in = n_in;
  p.n_out = n_out;
  p.w = t.add(prefix + ".weight", {n_out, n_in});
  if (bias) p.b = t.add(prefix + ".bias", {n_out});
  const LoraConfig* lora = t.lora();
  if (lora == nullptr || !lora->on()) return p;
  p.frozen = true;  // with adapters anywhere, every base weight is frozen
  if (!lora->targets(prefix)) return p;
  p.rank = lora->rank;
  p.lora_scale = static_cast<float>(lora->scale());
  p.lora_dropout = static_cast<float>(lora->dropout);
  p.lora_a = t.add_adapter(prefix + ".lora_A.weight", {lora->rank, n_in});
  p.lora_b = t.add_adapter(prefix + ".lora_B.weight", {n_out, lora->rank});
  return p;
}

NormP add_norm(ParamTable& t, const std::string& name, int dim) {
  return NormP{t.add(name, {dim}), dim};
}

}  // namespace aha::policy
