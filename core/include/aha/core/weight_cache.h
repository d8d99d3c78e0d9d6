// A decode loop's promise that its weights do not change (core/weight_cache.cpp).
#pragma once

#include <cstdint>

namespace aha {

// While one lives, the decode path's weight GEMMs keep what they derive from a weight inside
// [data, data + n) (a model's parameters): the fp32 batch-invariant kernel its k-major panels
// (gemm_xwt_rowstable), the bf16 kernel its packed pairs and rounded copy (gemm_bf16_weight,
// bf16_rounded). A decode loop reuses its weights every step, and at small batches packing them
// would cost more than the product. Values are the same with or without one. Those values must
// not change while it lives (engines hold one for a generate call; the trainer's updates happen
// outside it), and the copies take about as much memory again as the weights they were made of.
// Only that range is cached: another thread's weights (an asynchronous sampler beside the
// trainer), activations and other models' weights are packed per call as without one. Scopes
// may nest and overlap across threads; a copy is dropped when no live scope covers its weight.
// The copies together stay within AHA_WEIGHT_CACHE_MB (default: a quarter of the machine's
// memory); the weights past it are packed per call.
class WeightCache {
 public:
  WeightCache(const float* data, int64_t n);
  ~WeightCache();
  WeightCache(const WeightCache&) = delete;
  WeightCache& operator=(const WeightCache&) = delete;

 private:
  const float* begin_;
  const float* end_;
};

// Bytes the live copies take (for tests and benchmarks).
int64_t weight_cache_bytes();

}  // namespace aha
