// Checkpoints of a model whose routed experts are sharded over the ranks (checkpoint.h): each
// rank writes its own share as one HF shard, so no rank ever gathers another's experts.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"

namespace aha::policy {

namespace fs = std::filesystem;

namespace {

// The routed expert a tensor belongs to, or -1 (replicated: attention, router, shared experts).
int expert_of(const std::string& name) {
  static const std::string kMark = ".mlp.experts.";
  const size_t at = name.find(kMark);
  if (at == std::string::npos) return -1;
  return std::stoi(name.substr(at + kMark.size()));
}

}  // namespace

std::string expert_shard_file(int rank, int size) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", rank + 1, size);
  return buf;
}

void save_expert_shard(const Model<float>& model, const std::string& path) {
  const ExpertParallel& ep = model.config().ep;
  AHA_CHECK(ep.sharded, "save_expert_shard of a model that holds every expert");
  std::vector<TensorToWrite> tensors;
  for (const ParamEntry& e : model.table().entries()) {
    if (e.adapter) continue;
    // Replicated tensors are the same on every rank: rank 0 writes them.
    if (expert_of(e.name) < 0 && ep.rank != 0) continue;
    const DType dtype = DType::kF32;  // training checkpoints stay exact
    tensors.push_back({e.name, e.shape, model.params().data() + e.offset, DType::kF32, dtype});
  }
  write_safetensors(path, tensors);
}

void save_expert_shard_index(const Model<float>& model, const std::string& dir) {
  ModelConfig whole = model.config();
  const ExpertParallel ep = whole.ep;
  whole.ep = ExpertParallel{};
  whole.lora = LoraConfig{};
  const ModelLayout layout(whole);  // every rank's tensor names, without values
  const int per = ep.n_local(whole.n_routed_experts);
  Json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", Json::object()}};
  int64_t total = 0;
  for (const ParamEntry& e : layout.table.entries()) {
    const int expert = expert_of(e.name);
    index["weight_map"][e.name] = expert_shard_file(expert < 0 ? 0 : expert / per, ep.size);
    total += static_cast<int64_t>(e.numel * sizeof(float));
  }
  index["metadata"]["total_size"] = total;
  save_json_file((fs::path(dir) / "model.safetensors.index.json").string(), index);
}

}  // namespace aha::policy
