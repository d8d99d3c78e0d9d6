// The copies of a weight that MLA's absorbed decode multiplies by (gemm_bf16.h): bf16-rounded
// floats and bf16 blocks, kept by the live WeightCache.
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "aha/core/aligned.h"
#include "aha/core/error.h"
#include "aha/core/gemm_bf16.h"
#include "bf16_pack.h"
#include "weight_cache.h"

namespace aha {

namespace {

// A copy made from w kBlock values at a time over the threads (convert(src, n, dst) writes n /
// shrink floats), kept by the live WeightCache, otherwise written to *storage. The cached
// copies are made inside a generate() call's first decode step, one MLA layer's kv_b at a time.
template <typename F>
const float* derived_copy(const float* w, int64_t size, WeightForm form, int64_t shrink,
                          std::vector<float>* storage, F&& convert) {
  auto fill = [&](float* v) {
    constexpr int64_t kBlock = 16384;
    tbb::this_task_arena::isolate([&] {
      tbb::parallel_for(int64_t{0}, (size + kBlock - 1) / kBlock, [&](int64_t b) {
        const int64_t i = b * kBlock;
        convert(w + i, std::min(kBlock, size - i), v + i / shrink);
      });
    });
  };
  const auto e = cached_weight(w, size, 0, form);
  if (e == nullptr) {
    storage->resize(size_t(size / shrink));
    fill(storage->data());
    return storage->data();
  }
  std::call_once(e->once, [&] {
    e->values = aligned_array<float>(size_t(size / shrink));
    fill(e->values.get());
  });
  return e->values.get();
}

}  // namespace

const float* bf16_rounded(const float* w, int64_t size, std::vector<float>* storage) {
  return derived_copy(w, size, WeightForm::bf16_rounded, 1, storage, bf16::round_values);
}

const float* bf16_blocks(const float* w, int64_t size, std::vector<float>* storage) {
  AHA_CHECK(size % 32 == 0, "bf16_blocks: ", size, " values, not a multiple of 32");
  return derived_copy(w, size, WeightForm::bf16_blocks, 2, storage,
                      [](const float* src, int64_t n, float* dst) {
                        bf16::pack_blocks(src, n, reinterpret_cast<uint32_t*>(dst));
                      });
}

}  // namespace aha
