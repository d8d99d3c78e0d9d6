// Parameter bookkeeping, llm.c style: all parameters live in one contiguous block, gradients and
// optimizer moments in mirrored blocks, and every layer refers to its tensors by offset. The
// table maps those offsets to HF tensor names: the one place where checkpoint names appear.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "aha/policy/lora.h"

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
  bool adapter = false;  // a LoRA factor (lora.h): after every base tensor, not in the HF checkpoint
};

class ParamTable {
 public:
  // Reserves numel(shape) values and returns their offset.
  size_t add(const std::string& name, std::vector<int64_t> shape, bool trainable = true);
  void mark_sparse_rows(const std::string& name);
  // LoRA: add_linear gives the layers `lora` targets adapters, registered with add_adapter after
  // the first `base_total` values, so the base keeps its offsets and the adapters (the only
  // trainable values) are one contiguous tail. Call before the first add; null: no adapters.
  void set_lora(const LoraConfig* lora, size_t base_total);
  const LoraConfig* lora() const { return lora_; }
  size_t add_adapter(const std::string& name, std::vector<int64_t> shape);
  size_t base_total() const { return adapter_end_ > 0 ? adapter_begin_ : total_; }
  // Registers `name` as another name for an existing offset (tied embeddings): not saved twice.
  const std::vector<ParamEntry>& entries() const { return entries_; }
  const ParamEntry& at(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  size_t total() const { return adapter_end_ > 0 ? adapter_end_ : total_; }

 private:
  size_t push(const std::string& name, std::vector<int64_t> shape, bool trainable, size_t& next);
  std::vector<ParamEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
  size_t total_ = 0;
  const LoraConfig* lora_ = nullptr;
  size_t adapter_begin_ = 0, adapter_end_ = 0;
};

// y = x W^T (+ b) (+ lora_scale (x A^T) B^T); W is [n_out, n_in], A [rank, n_in], B [n_out, rank].
struct LinearP {
  size_t w = kNoParam;
  size_t b = kNoParam;
  int n_in = 0;
  int n_out = 0;
  size_t lora_a = kNoParam, lora_b = kNoParam;  // kNoParam: no adapter
  int rank = 0;
  float lora_scale = 0;
  float lora_dropout = 0;
  bool frozen = false;  // LoRA: W and b get no gradient (the weight GEMM is skipped)
};

struct NormP {
  size_t w = kNoParam;
  int dim = 0;
};

LinearP add_linear(ParamTable& t, const std::string& prefix, int n_in, int n_out,
                   bool bias = false);
NormP add_norm(ParamTable& t, const std::string& name, int dim);

}  // namespace aha::policy
