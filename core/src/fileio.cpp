// Whole-file reads, atomic writes and read-only memory maps.
#include "aha/core/fileio.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "aha/core/error.h"

namespace aha {

std::string read_file(const std::string& path) {
  // Regular files only, checked on the open descriptor: a FIFO or a device would block or
  // never end. O_NONBLOCK makes the open itself return for a FIFO without a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("[read_file] cannot open ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("[read_file] not a regular file: ", path);
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  int err = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;  // an error, or the file shrank while it was read
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (err != 0) fail("[read_file] cannot read ", path, ": ", std::strerror(err));
  out.resize(got);
  return out;
}

void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string&)>& write) {
  std::random_device rd;
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  try {
    write(tmp);
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) fail("[write_file_atomic] cannot rename ", tmp, " to ", path, ": ", ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  // POSIX calls rather than a stream: a full disk must come back as its errno (ENOSPC,
  // EDQUOT, EIO), which iostreams do not keep. close() can report it too (NFS, quotas).
  write_file_atomic(path, [&](const std::string& tmp) {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("[write_file_atomic] cannot create ", tmp, ": ", std::strerror(errno));
    std::string_view left = contents;
    while (!left.empty()) {
      const ssize_t n = ::write(fd, left.data(), left.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        ::close(fd);
        fail("[write_file_atomic] cannot write ", path, " (", contents.size() - left.size(),
             " of ", contents.size(), " bytes written): ", std::strerror(err));
      }
      left.remove_prefix(static_cast<size_t>(n));
    }
    if (::close(fd) != 0) {
      fail("[write_file_atomic] cannot write ", path, ": ", std::strerror(errno));
    }
  });
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("[MappedFile] cannot open ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("[MappedFile] cannot stat ", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("[MappedFile] not a regular file: ", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail("[MappedFile] mmap failed for ", path, ": ", std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace aha
