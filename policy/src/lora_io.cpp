// LoRA adapters on disk in the PEFT layout, and the merge W + s B A of an HF export.
#include <tbb/parallel_for.h>

#include <filesystem>

#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"

namespace aha::policy {

namespace fs = std::filesystem;

namespace {

constexpr const char* kAdapterConfig = "adapter_config.json";
constexpr const char* kAdapterWeights = "adapter_model.safetensors";
constexpr const char* kPeftPrefix = "base_model.model.";

// "model.layers.0.self_attn.q_proj.weight" -> "model.layers.0.self_attn.q_proj"
std::string module_of(const std::string& weight_name) {
  return weight_name.substr(0, weight_name.size() - std::string(".weight").size());
}

Json adapter_config(const LoraConfig& l) {
  return Json{{"peft_type", "LORA"},
              {"task_type", "CAUSAL_LM"},
              {"r", l.rank},
              {"lora_alpha", l.alpha},
              {"lora_dropout", l.dropout},
              {"use_rslora", l.use_rslora},
              {"target_modules", l.target_modules},
              {"base_model_name_or_path", l.base_model},
              {"bias", "none"},
              {"fan_in_fan_out", false},
              {"inference_mode", true},
              {"modules_to_save", nullptr},
              // PEFT has no key for it: matching a module name there includes routed experts.
              {"aha_target_experts", l.target_experts}};
}

}  // namespace

template <typename T>
bool merged_weight(const Model<T>& model, const ParamEntry& e, std::vector<T>& out) {
  const std::string m = module_of(e.name);
  if (e.adapter || !e.name.ends_with(".weight") || !model.table().contains(m + ".lora_A.weight")) {
    return false;
  }
  const ParamEntry& a = model.table().at(m + ".lora_A.weight");
  const ParamEntry& b = model.table().at(m + ".lora_B.weight");
  const int64_t n_out = e.shape[0], n_in = e.shape[1], r = a.shape[0];
  const T* W = model.params().data() + e.offset;
  const T* A = model.params().data() + a.offset;
  const T* B = model.params().data() + b.offset;
  const double s = model.config().lora.scale();
  out.resize(e.numel);
  tbb::parallel_for(int64_t{0}, n_out, [&](int64_t o) {
    for (int64_t i = 0; i < n_in; ++i) {
      double acc = 0;
      for (int64_t k = 0; k < r; ++k) acc += double(B[o * r + k]) * double(A[k * n_in + i]);
      out[o * n_in + i] = static_cast<T>(double(W[o * n_in + i]) + s * acc);
    }
  });
  return true;
}

template <typename T>
void save_adapters(const Model<T>& model, const std::string& dir) {
  const LoraConfig& l = model.config().lora;
  AHA_CHECK(l.on(), "save_adapters without adapters");
  std::vector<TensorToWrite> tensors;
  for (const ParamEntry& e : model.table().entries()) {
    if (!e.adapter) continue;
    tensors.push_back({kPeftPrefix + e.name, e.shape, model.params().data() + e.offset,
                       sizeof(T) == 8 ? DType::kF64 : DType::kF32, DType::kF32});
  }
  write_dir_atomic(dir, [&](const std::string& tmp) {
    write_safetensors((fs::path(tmp) / kAdapterWeights).string(), tensors, {{"format", "pt"}});
    save_json_file((fs::path(tmp) / kAdapterConfig).string(), adapter_config(l));
  });
}

template <typename T>
void load_adapters(Model<T>& model, const std::string& dir) {
  const LoraConfig& l = model.config().lora;
  const fs::path cfg_path = fs::path(dir) / kAdapterConfig;
  if (!fs::exists(cfg_path)) fail("[load_adapters] ", dir, " has no ", kAdapterConfig);
  const Json cfg = load_json_file(cfg_path.string());
  if (cfg.value("peft_type", "") != "LORA") {
    fail("[load_adapters] ", dir, ": peft_type is not LORA");
  }
  const int r = cfg.value("r", 0);
  const double alpha = cfg.value("lora_alpha", 0.0);
  if (r != l.rank || alpha != l.alpha || cfg.value("use_rslora", false) != l.use_rslora) {
    fail("[load_adapters] ", dir, " has r ", r, ", lora_alpha ", alpha,
         "; the lora config asks for rank ", l.rank, ", alpha ", l.alpha);
  }
  TensorArchive archive((fs::path(dir) / kAdapterWeights).string());
  size_t used = 0;
  for (const ParamEntry& e : model.table().entries()) {
    if (!e.adapter) continue;
    const std::string name = kPeftPrefix + e.name;
    if (!archive.contains(name)) fail("[load_adapters] ", dir, " has no ", name);
    archive.read<T>(name, e.shape, model.params().data() + e.offset);
    ++used;
  }
  if (archive.names().size() != used) {
    fail("[load_adapters] ", dir, " holds ", archive.names().size(), " tensors, the lora config ",
         "adapts ", used / 2, " layers (", used, " tensors): target_modules differ");
  }
}

#define AHA_INSTANTIATE_LORA_IO(T)                                                   \
  template bool merged_weight<T>(const Model<T>&, const ParamEntry&, std::vector<T>&); \
  template void save_adapters<T>(const Model<T>&, const std::string&);               \
  template void load_adapters<T>(Model<T>&, const std::string&);

AHA_INSTANTIATE_LORA_IO(float)
AHA_INSTANTIATE_LORA_IO(double)

}  // namespace aha::policy
