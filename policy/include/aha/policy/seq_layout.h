// How a packed batch's tokens are laid out: sequence boundaries and the position of every token.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "aha/core/aligned.h"

namespace aha::policy {

// Token layout of a packed batch: sequence boundaries and the position of every token.
struct SeqLayout {
  std::vector<int64_t> seq_starts;  // [n_seqs + 1]
  std::vector<int32_t> positions;   // [n_tokens]
  int64_t n_tokens() const { return seq_starts.empty() ? 0 : seq_starts.back(); }
};

template <typename T>
using Buf = std::vector<T, LineAllocator<T>>;

// An allocator whose value-initialisation leaves new elements unset instead of zeroing them,
// and whose blocks start on a cache line (aligned.h: the kernels' 64-byte loads).
template <typename T>
struct NoInitAllocator : LineAllocator<T> {
  template <typename U>
  struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <typename U>
  NoInitAllocator(const NoInitAllocator<U>&) {}
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      ::new (static_cast<void*>(p)) U;
    } else {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  }
};

// A buffer every element of which is written before it is read: growing it does not zero it.
// Decode builds its activations afresh on every pass, and zeroing them on the calling thread
// was a tenth of a two-thread prefill.
template <typename T>
using ScratchBuf = std::vector<T, NoInitAllocator<T>>;

// b sized to n for values about to be written in full: growing it copies none of the old ones
// (a plain resize moves them into the new block, about 1% of a prefill).
template <typename T>
void resize_for_overwrite(ScratchBuf<T>& b, size_t n) {
  if (n > b.capacity()) b.clear();
  b.resize(n);
}

// b sized to n with any new elements zeroed, as a Buf's resize does: for buffers whose readers
// may rely on zeros where nothing was written.
template <typename T>
void resize_zeroed(ScratchBuf<T>& b, size_t n) {
  const size_t old = b.size();
  b.resize(n);
  if (n > old) std::fill(b.begin() + static_cast<std::ptrdiff_t>(old), b.end(), T(0));
}

}  // namespace aha::policy
