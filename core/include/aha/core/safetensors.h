// safetensors I/O: memory-mapped strict reading of single files and sharded checkpoints
// (model.safetensors.index.json), and atomic writing with dtype conversion.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/dtype.h"
#include "aha/core/fileio.h"

namespace aha {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offsets into the data section
  size_t end = 0;
  int64_t numel() const;
};

std::string shape_str(const std::vector<int64_t>& shape);

// One .safetensors file, mapped read-only. The header is validated completely on open:
// sizes, dtypes, shapes, offsets that tile the data section exactly. Thread-safe for reads.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const uint8_t* data(const TensorInfo& info) const { return data_start_ + info.begin; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  const uint8_t* data_start_ = nullptr;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint's tensors: a single file, or a directory holding model.safetensors or a
// sharded set described by model.safetensors.index.json. Thread-safe for reads.
class TensorArchive {
 public:
  explicit TensorArchive(const std::string& path);

  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  std::vector<std::string> names() const;
  // The tensor's stored bytes (little-endian, possibly unaligned), e.g. FP8 codes.
  const uint8_t* data(const std::string& name) const;
  // Converts the tensor into dst, checking that its shape equals `shape`.
  template <typename T>
  void read(const std::string& name, const std::vector<int64_t>& shape, T* dst) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
  std::string path_;
};

// A tensor to write: `data` holds numel elements of `src_dtype` (F32 or F64) that are stored
// as `dtype` (F32, F16, BF16), or of any dtype equal to `dtype`, stored as they are.
struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  DType src_dtype = DType::kF32;
  DType dtype = DType::kF32;
};

// Writes one .safetensors file atomically; tensor order is preserved.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes `dir/model.safetensors`, or shards `model-0000K-of-0000N.safetensors` plus
// `model.safetensors.index.json` when the total exceeds max_shard_bytes (0: never shard).
void write_checkpoint_tensors(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                              size_t max_shard_bytes = 0);

}  // namespace aha
