// A decode loop's promise that the weights do not change (core/weight_cache.cpp).
#pragma once

namespace aha {

// While one lives, the decode path's weight GEMMs keep what they derive from a weight: the
// fp32 batch-invariant kernel its k-major panels (gemm_xwt_rowstable), the bf16 kernel its
// packed pairs and rounded copy (gemm_bf16_weight, bf16_rounded). A decode loop reuses its
// weights every step, and at small batches packing them would cost more than the product.
// Values are the same with or without one. The weights must not change while one lives (engines
// hold one for a generate call; the trainer's updates happen outside it), and the copies take
// about as much memory again as the weights they were made of. Scopes may nest and overlap
// across threads: they share one cache, dropped when the last one ends.
class WeightCache {
 public:
  WeightCache();
  ~WeightCache();
  WeightCache(const WeightCache&) = delete;
  WeightCache& operator=(const WeightCache&) = delete;
  struct Impl;
};

}  // namespace aha
