// How the `aha` process takes its memory from the kernel.
#include "process_memory.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace aha::cli {

namespace {

constexpr const char* kTunable = "glibc.malloc.hugetlb=1";
// The caller's GLIBC_TUNABLES across the exec, so that it is theirs again afterwards.
constexpr const char* kSaved = "AHA_GLIBC_TUNABLES_BEFORE";
constexpr const char* kUnset = "\x01";  // kSaved's value when there was none

// The kernel gives huge pages to advised memory only ("[madvise]"). Under "[always]" the heap
// has them already, under "[never]" not at all: then the exec would buy nothing.
bool huge_pages_need_advice() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  return std::getline(f, line) && line.find("[madvise]") != std::string::npos;
}

void restore_tunables(const char* before) {
  if (std::strcmp(before, kUnset) == 0) {
    unsetenv("GLIBC_TUNABLES");
  } else {
    setenv("GLIBC_TUNABLES", before, 1);
  }
  unsetenv(kSaved);
}

}  // namespace

void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

void heap_on_huge_pages(char** argv) {
  if (const char* before = std::getenv(kSaved)) {
    // This is the process after the exec: malloc has read the tunable; what aha starts (reward
    // programs, sandboxes, tools) sees the caller's environment, not this one.
    restore_tunables(before);
    return;
  }
  const char* off = std::getenv("AHA_HUGE_PAGES");
  if (off != nullptr && std::strcmp(off, "0") == 0) return;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.hugetlb") != nullptr) return;
  if (!huge_pages_need_advice()) return;
  std::string value = tunables != nullptr && *tunables != '\0' ? std::string(tunables) + ":" : "";
  value += kTunable;
  setenv(kSaved, tunables != nullptr ? tunables : kUnset, 1);
  setenv("GLIBC_TUNABLES", value.c_str(), 1);
  execv("/proc/self/exe", argv);
  // No /proc, or the binary is gone: run as is.
  restore_tunables(std::getenv(kSaved));
}

}  // namespace aha::cli
