// The entries of the live WeightCache (internal to core).
#pragma once

#include <cstdint>
#include <mutex>

#include "aha/core/aligned.h"
#include "aha/core/weight_cache.h"

namespace aha {

enum class WeightForm { f32_panels, bf16_panels, bf16_rounded, bf16_blocks, bf16_blocks_tail_t };

// What one kernel derives from one weight, made once (under `once`) by the first caller, who
// writes every value (not zeroed first: packing a weight once per generate() call is a cost at
// short completions).
struct CachedWeight {
  std::once_flag once;
  AlignedArray<float> values;
  AlignedArray<uint32_t> words;
};

// The live cache's entry for weight w seen as n rows of k values in `form` (k = 0: n values);
// null when no live WeightCache covers those values. The entry lives while a scope covering w
// does: a caller uses it inside the scope it runs under (a generate() call), as it does w.
// `variant` tells apart copies of one form that a caller lays out differently.
CachedWeight* cached_weight(const float* w, int64_t n, int64_t k, WeightForm form,
                            int64_t variant = 0);

}  // namespace aha
