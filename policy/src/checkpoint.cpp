// Loading and saving HF-layout checkpoints.
#include "aha/policy/checkpoint.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <random>

#include "aha/core/error.h"
#include "aha/core/fp8.h"
#include "aha/policy/quantization.h"

namespace aha::policy {

namespace fs = std::filesystem;

namespace {

// An F8_E4M3 tensor: codes times its block scales (`name`_scale_inv), into w.
template <typename T>
void load_fp8(const TensorArchive& archive, const ParamEntry& e,
              const std::optional<Fp8BlockFormat>& format, T* w) {
  const TensorInfo& ti = archive.info(e.name);
  if (!format) {
    fail("[load] ", e.name, " is F8_E4M3 but config.json has no quantization_config ",
         "(quant_method \"fp8\" with weight_block_size)");
  }
  if (ti.shape != e.shape) {
    fail("[load] ", e.name, " has shape ", shape_str(ti.shape), ", the model expects ",
         shape_str(e.shape));
  }
  if (e.shape.size() != 2) fail("[load] ", e.name, " is F8_E4M3 but not a matrix");
  const std::string scale = fp8_scale_name(e.name);
  if (!archive.contains(scale)) {
    fail("[load] ", e.name, " is F8_E4M3 but its block scales ", scale, " are missing");
  }
  const TensorInfo& si = archive.info(scale);
  if (si.dtype != DType::kF32 && si.dtype != DType::kBF16 && si.dtype != DType::kF16) {
    fail("[load] ", scale, " is ", dtype_name(si.dtype), ", expected F32");
  }
  const int64_t n = e.shape[0], k = e.shape[1];
  const std::vector<int64_t> want = {fp8_scale_rows(n, *format), fp8_scale_cols(k, *format)};
  if (si.shape != want) {
    fail("[load] ", scale, " has shape ", shape_str(si.shape), ", expected ", shape_str(want),
         " for ", e.name, " ", shape_str(e.shape), " in blocks of [", format->block_n, ", ",
         format->block_k, "] (quantization_config.weight_block_size)");
  }
  std::vector<float> scales(static_cast<size_t>(want[0] * want[1]));
  archive.read<float>(scale, want, scales.data());
  fp8_dequantize<T>(archive.data(e.name), scales.data(), n, k, *format, w);
}

// Every tensor config.json asks for, with its shape, before the model's memory is allocated: a
// config that does not describe the checkpoint (a head size of a million) fails in milliseconds
// instead of after zeroing gigabytes of parameters it would never load.
void check_layout(const ModelConfig& c, const TensorArchive& archive) {
  const ModelLayout layout(c);
  for (const ParamEntry& e : layout.table.entries()) {
    if (e.adapter) continue;  // LoRA adapters: load_adapters
    if (!archive.contains(e.name)) {
      fail("[load] missing tensor '", e.name, "' ", shape_str(e.shape),
           ": config.json asks for it, the checkpoint does not hold it");
    }
    const TensorInfo& ti = archive.info(e.name);
    if (ti.shape != e.shape) {
      fail("[load] ", e.name, " has shape ", shape_str(ti.shape), ", the model expects ",
           shape_str(e.shape));
    }
  }
}

}  // namespace

template <typename T>
void load_weights(Model<T>& model, const TensorArchive& archive) {
  const std::optional<Fp8BlockFormat> format = fp8_format_of(model.config().raw);
  size_t used = 0;
  for (const ParamEntry& e : model.table().entries()) {
    if (e.adapter) continue;  // LoRA adapters: load_adapters
    T* w = model.params().data() + e.offset;
    if (archive.info(e.name).dtype == DType::kF8E4M3) {
      load_fp8(archive, e, format, w);
      ++used;  // its scales
    } else {
      archive.read<T>(e.name, e.shape, w);
    }
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
  if (total > used && !model.config().ep.sharded) {  // sharded: the others' experts
    spdlog::warn("checkpoint holds {} tensors the model does not use (ignored)", total - used);
  }
}

template <typename T>
std::unique_ptr<Model<T>> load_model(const std::string& dir, const LoraConfig& lora) {
  return load_model<T>(dir, lora, ExpertParallel{});
}

template <typename T>
std::unique_ptr<Model<T>> load_model(const std::string& dir, const LoraConfig& lora,
                                     const ExpertParallel& ep) {
  if (!fs::is_directory(dir)) fail("[load_model] ", dir, " is not a directory");
  fs::path cfg = fs::path(dir) / "config.json";
  if (!fs::exists(cfg)) fail("[load_model] ", dir, " has no config.json");
  ModelConfig c;
  try {
    c = ModelConfig::load(cfg.string());
  } catch (const Error& e) {
    fail(cfg.string(), ": ", e.what());
  }
  c.lora = lora;
  c.ep = ep;
  const auto start = std::chrono::steady_clock::now();
  TensorArchive archive(dir);
  check_layout(c, archive);
  auto model = std::make_unique<Model<T>>(c);
  load_weights(*model, archive);
  spdlog::debug("loaded the weights of {} in {:.3f} s", dir,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return model;
}

template <typename T>
std::unique_ptr<Model<T>> load_model(const std::string& dir) {
  const LoraConfig none;
  return load_model<T>(dir, none);
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
void save_model_files(const Model<T>& model, const std::string& tmp, const SaveOptions& opts) {
  const ModelConfig& c = model.config();
  Json cfg = c.to_json();
  set_quantization_config(cfg, opts.fp8);
  cfg["torch_dtype"] = opts.dtype == DType::kBF16  ? "bfloat16"
                       : opts.dtype == DType::kF16 ? "float16"
                                                   : "float32";
  save_json_file((fs::path(tmp) / "config.json").string(), cfg);
  if (c.engram && c.engram->compression && !c.engram->compression->empty()) {
    save_engram_compression((fs::path(tmp) / kEngramCompressionFile).string(),
                            *c.engram->compression);
  }
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
}

template <typename T>
void save_model(const Model<T>& model, const std::string& dir, const SaveOptions& opts) {
  AHA_CHECK(!model.config().ep.sharded, "save_model of a sharded model: save_expert_shard");
  if (opts.fp8 && (opts.fp8->block_n <= 0 || opts.fp8->block_k <= 0)) {
    fail("[save_model] FP8 block size [", opts.fp8->block_n, ", ", opts.fp8->block_k,
         "] must be positive");
  }
  std::vector<TensorToWrite> tensors;
  // FP8 codes and scales, alive until written (a deque never moves its elements).
  std::deque<std::vector<uint8_t>> codes;
  std::deque<std::vector<float>> scales;
  std::deque<std::vector<T>> merged;  // LoRA: W + s B A (the adapters are not written)
  for (const ParamEntry& e : model.table().entries()) {
    if (e.adapter) continue;
    TensorToWrite t;
    t.name = e.name;
    t.shape = e.shape;
    t.data = model.params().data() + e.offset;
    if (std::vector<T> w; merged_weight(model, e, w)) {
      t.data = merged.emplace_back(std::move(w)).data();
    }
    t.src_dtype = sizeof(T) == 8 ? DType::kF64 : DType::kF32;
    // The routing bias steers selection at fine resolution: it stays fp32 like in V3 releases;
    // hyper-connection weights stay fp32 as in DeepSeek-V4's (HF keeps them fp32 strictly).
    const bool keep_fp32 = !e.trainable || e.name.find("_hc.") != std::string::npos ||
                           e.name.starts_with("model.hc_head.");
    t.dtype = keep_fp32 ? DType::kF32 : opts.dtype;
    if (opts.fp8 && e.trainable && is_fp8_weight(e.name, e.shape)) {
      const int64_t n = e.shape[0], k = e.shape[1];
      const std::vector<int64_t> sshape = {fp8_scale_rows(n, *opts.fp8),
                                           fp8_scale_cols(k, *opts.fp8)};
      std::vector<uint8_t>& q = codes.emplace_back(e.numel);
      std::vector<float>& s = scales.emplace_back(static_cast<size_t>(sshape[0] * sshape[1]));
      try {
        fp8_quantize<T>(static_cast<const T*>(t.data), n, k, *opts.fp8, q.data(), s.data());
      } catch (const Error& err) {
        fail("[save_model] ", e.name, ": ", err.what());
      }
      t.data = q.data();
      t.src_dtype = t.dtype = DType::kF8E4M3;
      tensors.push_back(t);
      tensors.push_back({fp8_scale_name(e.name), sshape, s.data(), DType::kF32, DType::kF32});
      continue;
    }
    tensors.push_back(t);
  }
  write_dir_atomic(dir, [&](const std::string& tmp) {
    write_checkpoint_tensors(tmp, tensors, opts.max_shard_bytes);
    save_model_files(model, tmp, opts);
  });
}

template std::unique_ptr<Model<float>> load_model<float>(const std::string&);
template std::unique_ptr<Model<double>> load_model<double>(const std::string&);
template std::unique_ptr<Model<float>> load_model<float>(const std::string&, const LoraConfig&);
template std::unique_ptr<Model<double>> load_model<double>(const std::string&, const LoraConfig&);
template std::unique_ptr<Model<float>> load_model<float>(const std::string&, const LoraConfig&,
                                                         const ExpertParallel&);
template std::unique_ptr<Model<double>> load_model<double>(const std::string&, const LoraConfig&,
                                                           const ExpertParallel&);
template void load_weights<float>(Model<float>&, const TensorArchive&);
template void load_weights<double>(Model<double>&, const TensorArchive&);
template void save_model<float>(const Model<float>&, const std::string&, const SaveOptions&);
template void save_model<double>(const Model<double>&, const std::string&, const SaveOptions&);
template void save_model_files<float>(const Model<float>&, const std::string&, const SaveOptions&);
template void save_model_files<double>(const Model<double>&, const std::string&,
                                       const SaveOptions&);

}  // namespace aha::policy
