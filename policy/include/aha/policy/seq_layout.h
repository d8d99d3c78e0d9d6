// How a packed batch's tokens are laid out: sequence boundaries and the position of every token.
#pragma once

#include <cstdint>
#include <vector>

namespace aha::policy {

// Token layout of a packed batch: sequence boundaries and the position of every token.
struct SeqLayout {
  std::vector<int64_t> seq_starts;  // [n_seqs + 1]
  std::vector<int32_t> positions;   // [n_tokens]
  int64_t n_tokens() const { return seq_starts.empty() ? 0 : seq_starts.back(); }
};

template <typename T>
using Buf = std::vector<T>;

}  // namespace aha::policy
