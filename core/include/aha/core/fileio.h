// File helpers: whole-file reads and atomic writes (temp file in the same directory, then
// rename) so that a crash never leaves a half-written checkpoint or config behind.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace aha {

std::string read_file(const std::string& path);

// Calls write(tmp_path) and renames tmp_path over path; removes tmp_path on failure.
void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string& tmp_path)>& write);
void write_file_atomic(const std::string& path, std::string_view contents);

// Read-only memory map of a whole file. Non-copyable; unmaps on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace aha
