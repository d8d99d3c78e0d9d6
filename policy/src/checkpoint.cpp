// Loading and saving HF-layout checkpoints.
#include "aha/policy/checkpoint.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "aha/core/error.h"

namespace aha::policy {

namespace fs = std::filesystem;

template <typename T>
void load_weights(Model<T>& model, const TensorArchive& archive) {
  size_t used = 0;
  for (const ParamEntry& e : model.table().entries()) {
    T* w = model.params().data() + e.offset;
    archive.read<T>(e.name, e.shape, w);
    // A NaN or Inf weight makes every logprob NaN downstream, silently: refuse it here.
    for (size_t i = 0; i < e.numel; ++i) {
      if (!std::isfinite(w[i])) {
        fail("[load] ", e.name, " holds a non-finite value (", w[i], ") at flat index ", i,
             ": the checkpoint is corrupt or diverged");
      }
    }
    ++used;
  }
  size_t total = archive.names().size();
  if (total > used) {
    spdlog::warn("checkpoint holds {} tensors the model does not use (ignored)", total - used);
  }
}

template <typename T>
std::unique_ptr<Model<T>> load_model(const std::string& dir) {
  if (!fs::is_directory(dir)) fail("[load_model] ", dir, " is not a directory");
  fs::path cfg = fs::path(dir) / "config.json";
  if (!fs::exists(cfg)) fail("[load_model] ", dir, " has no config.json");
  ModelConfig c;
  try {
    c = ModelConfig::load(cfg.string());
  } catch (const Error& e) {
    fail(cfg.string(), ": ", e.what());
  }
  auto model = std::make_unique<Model<T>>(c);
  TensorArchive archive(dir);
  load_weights(*model, archive);
  return model;
}

void write_dir_atomic(const std::string& dir, const std::function<void(const std::string&)>& fill) {
  fs::path target = fs::absolute(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  fs::create_directories(target.parent_path());
  std::random_device rd;
  std::string suffix = std::to_string(::getpid()) + "." + std::to_string(rd());
  fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp." + suffix);
  fs::path old = target.parent_path() / ("." + target.filename().string() + ".old." + suffix);
  try {
    fs::create_directories(tmp);
    fill(tmp.string());
    if (fs::exists(target)) fs::rename(target, old);
    fs::rename(tmp, target);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    if (!fs::exists(target) && fs::exists(old)) fs::rename(old, target, ec);
    throw;
  }
  std::error_code ec;
  fs::remove_all(old, ec);
}

int sweep_partial_writes(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  int removed = 0;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  for (const fs::path& p : entries) {
    const std::string name = p.filename().string();
    if (name.size() < 2 || name[0] != '.') continue;
    for (const char* kind : {".old.", ".tmp."}) {
      const size_t at = name.find(kind, 1);
      if (at == std::string::npos) continue;
      const fs::path target = p.parent_path() / name.substr(1, at - 1);
      if (std::string(kind) == ".old." && !fs::exists(target, ec)) {
        fs::rename(p, target, ec);
        if (!ec) spdlog::warn("restored {} from an interrupted save", target.string());
      } else {
        fs::remove_all(p, ec);
        ++removed;
      }
      break;
    }
  }
  if (removed > 0) spdlog::info("removed {} partial checkpoint writes from {}", removed, dir);
  return removed;
}

template <typename T>
void save_model(const Model<T>& model, const std::string& dir, const SaveOptions& opts) {
  const ModelConfig& c = model.config();
  std::vector<TensorToWrite> tensors;
  for (const ParamEntry& e : model.table().entries()) {
    TensorToWrite t;
    t.name = e.name;
    t.shape = e.shape;
    t.data = model.params().data() + e.offset;
    t.src_dtype = sizeof(T) == 8 ? DType::kF64 : DType::kF32;
    // The routing bias steers selection at fine resolution: it stays fp32 like in V3 releases.
    t.dtype = e.trainable ? opts.dtype : DType::kF32;
    tensors.push_back(t);
  }
  write_dir_atomic(dir, [&](const std::string& tmp) {
    write_checkpoint_tensors(tmp, tensors, opts.max_shard_bytes);
    Json cfg = c.to_json();
    cfg["torch_dtype"] = opts.dtype == DType::kBF16  ? "bfloat16"
                         : opts.dtype == DType::kF16 ? "float16"
                                                     : "float32";
    save_json_file((fs::path(tmp) / "config.json").string(), cfg);
    Json gen = Json::object();
    if (c.bos_token_id) gen["bos_token_id"] = *c.bos_token_id;
    if (c.eos_token_id) gen["eos_token_id"] = *c.eos_token_id;
    save_json_file((fs::path(tmp) / "generation_config.json").string(), gen);
    if (!opts.copy_tokenizer_from.empty()) {
      for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
        fs::path src = fs::path(opts.copy_tokenizer_from) / f;
        if (fs::exists(src)) fs::copy_file(src, fs::path(tmp) / f);
      }
    }
  });
}

template std::unique_ptr<Model<float>> load_model<float>(const std::string&);
template std::unique_ptr<Model<double>> load_model<double>(const std::string&);
template void load_weights<float>(Model<float>&, const TensorArchive&);
template void load_weights<double>(Model<double>&, const TensorArchive&);
template void save_model<float>(const Model<float>&, const std::string&, const SaveOptions&);
template void save_model<double>(const Model<double>&, const std::string&, const SaveOptions&);

}  // namespace aha::policy
