// Parallel loops over fixed-size chunks (internal to the policy module).
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>

#include "aha/policy/seq_layout.h"

namespace aha::policy {

// f(chunk index, begin, end) over [0, n) in chunks of `chunk`, with simple_partitioner: the
// split, and so every partial sum, is the same for any number of threads.
template <typename F>
void for_chunks(int64_t n, int64_t chunk, F&& f) {
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, n_chunks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t c = r.begin(); c < r.end(); ++c) f(c, c * chunk, std::min(n, (c + 1) * chunk));
      },
      tbb::simple_partitioner());
}

// Elements per task of the parallel copies and fills below: 64 KiB of floats, so that a
// training step's [tokens, width] buffers split into several tasks and a decode row into one.
constexpr int64_t kFillChunk = 16384;

// p[0, n) = 0 on every thread. A step's gradient buffers (megabytes each) were zeroed by one
// memset on the calling thread while the other cores waited.
template <typename T>
void fill_zero(T* p, int64_t n) {
  for_chunks(n, kFillChunk,
             [&](int64_t, int64_t i0, int64_t i1) { std::fill(p + i0, p + i1, T(0)); });
}

// A buffer of n zeros, filled by fill_zero.
template <typename T>
ScratchBuf<T> zeros(int64_t n) {
  ScratchBuf<T> b(static_cast<size_t>(n));
  fill_zero(b.data(), n);
  return b;
}

// f(t) for every token t in [0, n), in chunks of rows of `width` values (per-token copies and
// adds whose results do not depend on the split).
template <typename F>
void for_tokens(int64_t n, int64_t width, F&& f) {
  for_chunks(n, std::max<int64_t>(1, kFillChunk / std::max<int64_t>(width, 1)),
             [&](int64_t, int64_t t0, int64_t t1) {
               for (int64_t t = t0; t < t1; ++t) f(t);
             });
}

}  // namespace aha::policy
