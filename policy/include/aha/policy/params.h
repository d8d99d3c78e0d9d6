// Parameter bookkeeping, llm.c style: all parameters live in one contiguous block, gradients and
// optimizer moments in mirrored blocks, and every layer refers to its tensors by offset. The
// table maps those offsets to HF tensor names: the one place where checkpoint names appear.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

namespace aha::policy {

constexpr size_t kNoParam = std::numeric_limits<size_t>::max();

struct ParamEntry {
  std::string name;  // HF tensor name
  std::vector<int64_t> shape;
  size_t offset = 0;
  size_t numel = 0;
  bool trainable = true;  // false for buffers such as e_score_correction_bias
  // A lookup table whose gradient touches few rows (Engram): the optimizer updates only rows
  // with a non-zero gradient and leaves the others' values and moments as they are.
  bool sparse_rows = false;
};

class ParamTable {
 public:
  // Reserves numel(shape) values and returns their offset.
  size_t add(const std::string& name, std::vector<int64_t> shape, bool trainable = true);
  void mark_sparse_rows(const std::string& name);
  // Registers `name` as another name for an existing offset (tied embeddings): not saved twice.
  const std::vector<ParamEntry>& entries() const { return entries_; }
  const ParamEntry& at(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  size_t total() const { return total_; }

 private:
  std::vector<ParamEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
  size_t total_ = 0;
};

// y = x W^T (+ b); W is [n_out, n_in].
struct LinearP {
  size_t w = kNoParam;
  size_t b = kNoParam;
  int n_in = 0;
  int n_out = 0;
};

struct NormP {
  size_t w = kNoParam;
  int dim = 0;
};

LinearP add_linear(ParamTable& t, const std::string& prefix, int n_in, int n_out,
                   bool bias = false);
NormP add_norm(ParamTable& t, const std::string& name, int dim);

}  // namespace aha::policy
