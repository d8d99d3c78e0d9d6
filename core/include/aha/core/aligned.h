// Arrays that start on a cache line (64 bytes).
//
// malloc and operator new return 16-byte alignment, and glibc places a large block 16 bytes past
// a page. A 64-byte vector load or an AMX tile row from such a buffer then straddles two cache
// lines on every access: the AMX product of 16 x 256 by 256 x 128 took 1.8 us with its packed
// operands 16 bytes off a line and 0.63 us on a line (docs/performance.md, sixth sitting).
// Packed operands and other buffers read with whole-line vectors live in these.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace aha {

inline constexpr std::size_t kCacheLine = 64;

// Asks the kernel for transparent huge pages (madvise MADV_HUGEPAGE) on the whole 2 MiB pages
// of [p, p + bytes); a block without one is left alone. A training step's activations are
// gigabytes that a step first touches page by page: 4 KiB faults, each a trip through the kernel
// (on a paravirtualised guest, about 10 us), were most of the first GRPO step's update and a
// third of the whole process's time in system calls.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;

struct AlignedFree {
  void operator()(void* p) const noexcept { std::free(p); }
};

template <typename T>
using AlignedArray = std::unique_ptr<T[], AlignedFree>;

// n uninitialised elements of a trivial type on a cache line (the size rounded up to whole
// lines, as aligned_alloc requires).
template <typename T>
AlignedArray<T> aligned_array(std::size_t n) {
  const std::size_t bytes = (n * sizeof(T) + kCacheLine - 1) / kCacheLine * kCacheLine;
  void* p = std::aligned_alloc(kCacheLine, bytes == 0 ? kCacheLine : bytes);
  if (p == nullptr) throw std::bad_alloc();
  advise_huge_pages(p, bytes);
  return AlignedArray<T>(static_cast<T*>(p));
}

// A std::vector allocator whose blocks start on a cache line.
template <typename T>
struct LineAllocator {
  using value_type = T;
  LineAllocator() = default;
  template <typename U>
  LineAllocator(const LineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    void* p = ::operator new(n * sizeof(T), std::align_val_t(kCacheLine));
    advise_huge_pages(p, n * sizeof(T));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept {
    ::operator delete(p, std::align_val_t(kCacheLine));
  }
  template <typename U>
  bool operator==(const LineAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace aha
