// The parameter table.
#include "aha/policy/params.h"

#include "aha/core/error.h"

namespace aha::policy {

size_t ParamTable::add(const std::string& name, std::vector<int64_t> shape, bool trainable) {
  AHA_CHECK(!index_.count(name), "duplicate parameter ", name);
  size_t n = 1;
  for (int64_t d : shape) {
    AHA_CHECK(d > 0, name);
    n *= static_cast<size_t>(d);
  }
  ParamEntry e{name, std::move(shape), total_, n, trainable};
  index_[name] = entries_.size();
  entries_.push_back(std::move(e));
  // Keep every tensor 16-float aligned so SIMD loads of a row start on a cache line.
  total_ += (n + 15) / 16 * 16;
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
  return p;
}

NormP add_norm(ParamTable& t, const std::string& name, int dim) {
  return NormP{t.add(name, {dim}), dim};
}

}  // namespace aha::policy
