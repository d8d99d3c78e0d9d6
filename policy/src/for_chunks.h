// Parallel loops over fixed-size chunks (internal to the policy module).
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>

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

}  // namespace aha::policy
