// safetensors reading (strict header validation) and writing.
#include "aha/core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "aha/core/error.h"

namespace aha {

namespace fs = std::filesystem;

namespace {
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";
}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const std::string where = "[load_safetensors] " + path + ": ";
  if (file_.size() < 8) fail(where, "file is ", file_.size(), " bytes, shorter than the header");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file_.data(), 8);
  if (header_len > kMaxHeaderBytes || header_len > file_.size() - 8) {
    fail(where, "header length ", header_len, " exceeds file size ", file_.size());
  }
  data_start_ = file_.data() + 8 + header_len;
  const size_t data_size = file_.size() - 8 - header_len;
  std::string why;
  const std::string_view text(reinterpret_cast<const char*>(file_.data()) + 8, header_len);
  Json header = try_parse_json(text, &why).value_or(Json());
  if (!why.empty()) fail(where, "header: ", why);
  if (!header.is_object()) fail(where, "header is not a JSON object");

  std::vector<const TensorInfo*> by_offset;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(where, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail(where, "__metadata__.", m.key(), " is not a string");
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const Json& e = *it;
    const std::string tw = where + "tensor '" + it.key() + "': ";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
        !e.contains("data_offsets")) {
      fail(tw, "entry needs dtype, shape and data_offsets");
    }
    if (!e["dtype"].is_string()) fail(tw, "dtype is not a string");
    TensorInfo info;
    info.name = it.key();
    info.dtype = dtype_from_name(e["dtype"].get<std::string>());
    if (!e["shape"].is_array()) fail(tw, "shape is not an array");
    uint64_t numel = 1;
    for (const Json& d : e["shape"]) {
      if (!d.is_number_unsigned()) fail(tw, "shape holds a non-integer or negative dim");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t{1} << 62) / dim) fail(tw, "shape overflows");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    const Json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned()) {
      fail(tw, "data_offsets must be two non-negative integers");
    }
    info.begin = off[0].get<uint64_t>();
    info.end = off[1].get<uint64_t>();
    if (info.end < info.begin || info.end > data_size) {
      fail(tw, "data_offsets [", info.begin, ", ", info.end, ") outside the data section of ",
           data_size, " bytes");
    }
    // Divide rather than multiply: numel * size can wrap for a hostile shape.
    const uint64_t bytes = info.end - info.begin, size = dtype_size(info.dtype);
    if (bytes % size != 0 || bytes / size != numel) {
      fail(tw, "byte length ", info.end - info.begin, " does not match shape ",
           shape_str(info.shape), " of ", dtype_name(info.dtype));
    }
    by_offset.push_back(&tensors_.emplace(info.name, info).first->second);
  }
  // Like the reference implementation: tensors must tile the data section with no gap/overlap.
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  size_t expected = 0;
  for (const TensorInfo* t : by_offset) {
    if (t->begin != expected) {
      fail(where, "tensor '", t->name, "' starts at byte ", t->begin, ", expected ", expected,
           " (overlap or gap)");
    }
    expected = t->end;
  }
  if (expected != data_size) {
    fail(where, "tensors cover ", expected, " bytes but the data section has ", data_size);
  }
}

TensorArchive::TensorArchive(const std::string& path) : path_(path) {
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    fs::path index = fs::path(path) / kIndexName;
    fs::path single = fs::path(path) / kSingleName;
    if (fs::exists(single)) {
      files.push_back(single.string());
    } else if (fs::exists(index)) {
      Json j = load_json_file(index.string());
      if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
        fail("[load_safetensors] ", index.string(), ": no weight_map object");
      }
      std::map<std::string, std::string> shard_of;
      for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it->is_string()) fail("[load_safetensors] ", index.string(), ": bad weight_map");
        shard_of[it.key()] = it->get<std::string>();
        if (std::find(files.begin(), files.end(), it->get<std::string>()) == files.end()) {
          files.push_back(it->get<std::string>());
        }
      }
      for (auto& f : files) {
        if (f.find('/') != std::string::npos) fail("[load_safetensors] shard name ", f, " has a /");
        f = (fs::path(path) / f).string();
      }
      for (const auto& f : files) files_.push_back(std::make_unique<SafetensorsFile>(f));
      for (const auto& [name, shard] : shard_of) {
        const SafetensorsFile* file = nullptr;
        for (const auto& sf : files_) {
          if (fs::path(sf->path()).filename() == shard) file = sf.get();
        }
        if (!file->tensors().count(name)) {
          fail("[load_safetensors] index maps '", name, "' to ", shard, " which lacks it");
        }
        where_[name] = file;
      }
      return;
    } else {
      fail("[load_safetensors] ", path, " has neither ", kSingleName, " nor ", kIndexName);
    }
  } else {
    files.push_back(path);
  }
  for (const auto& f : files) files_.push_back(std::make_unique<SafetensorsFile>(f));
  for (const auto& sf : files_) {
    for (const auto& [name, info] : sf->tensors()) where_[name] = sf.get();
  }
}

const TensorInfo& TensorArchive::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("[load_safetensors] ", path_, ": missing tensor '", name, "'");
  return it->second->tensors().at(name);
}

const uint8_t* TensorArchive::data(const std::string& name) const {
  const TensorInfo& ti = info(name);
  return where_.at(name)->data(ti);
}

std::vector<std::string> TensorArchive::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

template <typename T>
void TensorArchive::read(const std::string& name, const std::vector<int64_t>& shape,
                         T* dst) const {
  const TensorInfo& ti = info(name);
  if (ti.shape != shape) {
    fail("[load_safetensors] tensor '", name, "' has shape ", shape_str(ti.shape),
         ", the model expects ", shape_str(shape));
  }
  convert_to<T>(ti.dtype, where_.at(name)->data(ti), static_cast<size_t>(ti.numel()), dst);
}

template void TensorArchive::read<float>(const std::string&, const std::vector<int64_t>&,
                                         float*) const;
template void TensorArchive::read<double>(const std::string&, const std::vector<int64_t>&,
                                          double*) const;

namespace {

size_t stored_bytes(const TensorToWrite& t) {
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  return n * dtype_size(t.dtype);
}

void append_converted(const TensorToWrite& t, std::string& out) {
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  if (t.src_dtype == t.dtype) {  // already encoded (e.g. FP8 codes): copied as they are
    out.append(static_cast<const char*>(t.data), n * dtype_size(t.dtype));
    return;
  }
  AHA_CHECK(t.src_dtype == DType::kF32 || t.src_dtype == DType::kF64, t.name);
  auto value = [&](size_t i) -> double {
    return t.src_dtype == DType::kF32 ? static_cast<const float*>(t.data)[i]
                                      : static_cast<const double*>(t.data)[i];
  };
  size_t start = out.size();
  out.resize(start + n * dtype_size(t.dtype));
  char* dst = out.data() + start;
  for (size_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case DType::kF32: {
        float v = static_cast<float>(value(i));
        std::memcpy(dst + 4 * i, &v, 4);
        break;
      }
      case DType::kF64: {
        double v = value(i);
        std::memcpy(dst + 8 * i, &v, 8);
        break;
      }
      case DType::kBF16: {
        uint16_t h = float_to_bf16(static_cast<float>(value(i)));
        std::memcpy(dst + 2 * i, &h, 2);
        break;
      }
      case DType::kF16: {
        uint16_t h = float_to_f16(static_cast<float>(value(i)));
        std::memcpy(dst + 2 * i, &h, 2);
        break;
      }
      default:
        fail("[write_safetensors] cannot store '", t.name, "' as ", dtype_name(t.dtype));
    }
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& t : tensors) {
    size_t bytes = stored_bytes(t);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  std::string blob;
  blob.reserve(8 + head.size() + offset);
  uint64_t len = head.size();
  blob.append(reinterpret_cast<const char*>(&len), 8);
  blob += head;
  for (const auto& t : tensors) append_converted(t, blob);
  write_file_atomic(path, blob);
}

void write_checkpoint_tensors(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                              size_t max_shard_bytes) {
  fs::create_directories(dir);
  std::vector<std::vector<TensorToWrite>> shards(1);
  size_t total = 0, current = 0;
  for (const auto& t : tensors) {
    size_t b = stored_bytes(t);
    if (max_shard_bytes > 0 && current > 0 && current + b > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(t);
    current += b;
    total += b;
  }
  // Stale files of a previous layout would shadow the new one on load.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    bool shard = name.rfind("model-", 0) == 0 && name.size() > 12 &&
                 name.substr(name.size() - 12) == ".safetensors";
    if (shard || name == kIndexName) fs::remove(entry.path(), ec);
  }
  if (shards.size() == 1) {
    write_safetensors((fs::path(dir) / kSingleName).string(), shards[0]);
    return;
  }
  fs::remove(fs::path(dir) / kSingleName, ec);
  Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", Json::object()}};
  char name[64];
  for (size_t k = 0; k < shards.size(); ++k) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    write_safetensors((fs::path(dir) / name).string(), shards[k]);
    for (const auto& t : shards[k]) index["weight_map"][t.name] = name;
  }
  save_json_file((fs::path(dir) / kIndexName).string(), index);
}

}  // namespace aha
