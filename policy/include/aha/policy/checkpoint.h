// Checkpoint directories in the HF layout: config.json, model.safetensors (or shards + index),
// generation_config.json and the tokenizer files. Saving is atomic at the directory level:
// everything is written to a sibling temp directory which then replaces the target.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "aha/core/dtype.h"
#include "aha/core/fp8.h"
#include "aha/core/safetensors.h"
#include "aha/policy/model.h"

namespace aha::policy {

// Reads config.json and the weights of `dir`. Missing tensors or wrong shapes throw aha::Error;
// tensors the model does not use (e.g. multi-token-prediction layers) are skipped with a warning.
// F8_E4M3 tensors are dequantized at load with their `*_scale_inv` block scales and the block
// size of config.json's quantization_config.
template <typename T>
std::unique_ptr<Model<T>> load_model(const std::string& dir);
// The same with LoRA adapters (lora.on()) after the base: zero until init_adapters or
// load_adapters.
template <typename T>
std::unique_ptr<Model<T>> load_model(const std::string& dir, const LoraConfig& lora);

// The same with the routed experts sharded (ep.sharded): reads only this rank's experts.
template <typename T>
std::unique_ptr<Model<T>> load_model(const std::string& dir, const LoraConfig& lora,
                                     const ExpertParallel& ep);

template <typename T>
void load_weights(Model<T>& model, const TensorArchive& archive);

struct SaveOptions {
  DType dtype = DType::kF32;      // F32, BF16 or F16 (with fp8: of the tensors not in FP8)
  // Set: linear weights (is_fp8_weight) are stored as F8_E4M3 with F32 `*.weight_scale_inv`
  // block scales, and config.json gets the matching quantization_config (DeepSeek-V3 layout).
  // Unset: config.json carries no quantization_config.
  std::optional<Fp8BlockFormat> fp8;
  size_t max_shard_bytes = 0;     // 0: one model.safetensors
  std::string copy_tokenizer_from;  // a directory whose tokenizer files are copied along
};

template <typename T>
void save_model(const Model<T>& model, const std::string& dir, const SaveOptions& opts = {});

// Expert parallelism with sharded experts: a checkpoint is the HF shards
// model-0000{r+1}-of-0000{N}.safetensors, rank r writing its own (rank 0: every replicated
// tensor and its experts; rank r > 0: only its experts), plus the index, which rank 0 can write
// alone since the config says whose each expert is. No rank ever holds another's experts.
std::string expert_shard_file(int rank, int size);
void save_expert_shard(const Model<float>& model, const std::string& path);
void save_expert_shard_index(const Model<float>& model, const std::string& dir);
// What save_model writes beside the tensors: config.json, generation_config.json, the tokenizer.
template <typename T>
void save_model_files(const Model<T>& model, const std::string& dir, const SaveOptions& opts);

// LoRA in the PEFT layout: adapter_config.json (peft_type LORA, r, lora_alpha, ...) and
// adapter_model.safetensors with base_model.model.<layer>.lora_A.weight [r, n_in] and
// lora_B.weight [n_out, r] in F32. save_model itself writes the merged W + s B A.
template <typename T>
void save_adapters(const Model<T>& model, const std::string& dir);
// Reads the adapters of `dir` into the model's; rank, alpha and the adapted layers must match.
template <typename T>
void load_adapters(Model<T>& model, const std::string& dir);
// W + s B A into `out` when the base weight e has an adapter (false: it has none).
template <typename T>
bool merged_weight(const Model<T>& model, const ParamEntry& e, std::vector<T>& out);

// Replaces `dir` by the directory `fill` writes into a fresh temp directory: a crash midway
// leaves the old `dir` intact.
void write_dir_atomic(const std::string& dir, const std::function<void(const std::string&)>& fill);
// After a kill: removes the half-written ".<name>.tmp.*" directories write_dir_atomic leaves in
// `dir`, and puts a ".<name>.old.*" back as <name> when the kill came between its two renames.
// Call only while holding the run directory (RunDb's lock). Returns the entries removed.
int sweep_partial_writes(const std::string& dir);

}  // namespace aha::policy
