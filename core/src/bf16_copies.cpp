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

// A copy derived from w (size / shrink floats, written in full by fill(dst)), kept by the live
// WeightCache under the key (w, n, k, form, variant), otherwise written to *storage. The cached
// copies are made inside a generate() call's first decode step, one MLA layer's kv_b at a time.
template <typename F>
const float* derived_copy(const float* w, int64_t size, int64_t n, int64_t k, WeightForm form,
                          int64_t variant, int64_t shrink, std::vector<float>* storage,
                          F&& fill) {
  const auto e = cached_weight(w, n, k, form, variant);
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

// for_each(i) over [0, count) on the threads, isolated: the caller may be inside another loop.
template <typename F>
void over_threads(int64_t count, F&& for_each) {
  tbb::this_task_arena::isolate([&] { tbb::parallel_for(int64_t{0}, count, for_each); });
}

// A flat copy, kBlock values of w at a time (convert(src, n, dst) writes n / shrink floats).
template <typename F>
const float* flat_copy(const float* w, int64_t size, WeightForm form, int64_t shrink,
                       std::vector<float>* storage, F&& convert) {
  constexpr int64_t kBlock = 16384;
  return derived_copy(w, size, size, 0, form, 0, shrink, storage, [&](float* v) {
    over_threads((size + kBlock - 1) / kBlock, [&](int64_t b) {
      const int64_t i = b * kBlock;
      convert(w + i, std::min(kBlock, size - i), v + i / shrink);
    });
  });
}

}  // namespace

const float* bf16_rounded(const float* w, int64_t size, std::vector<float>* storage) {
  return flat_copy(w, size, WeightForm::bf16_rounded, 1, storage, bf16::round_values);
}

const float* bf16_blocks(const float* w, int64_t size, std::vector<float>* storage) {
  AHA_CHECK(size % 32 == 0, "bf16_blocks: ", size, " values, not a multiple of 32");
  return flat_copy(w, size, WeightForm::bf16_blocks, 2, storage,
                   [](const float* src, int64_t n, float* dst) {
                     bf16::pack_blocks(src, n, reinterpret_cast<uint32_t*>(dst));
                   });
}

const float* bf16_blocks_tail_transposed(const float* w, int64_t groups, int64_t head,
                                         int64_t tail, int64_t cols,
                                         std::vector<float>* storage) {
  AHA_CHECK(cols % 32 == 0 && tail % 32 == 0, "bf16_blocks_tail_transposed: ", cols,
            " columns and ", tail, " transposed rows, not multiples of 32");
  const int64_t rows = head + tail, size = groups * rows * cols;
  auto fill = [&](float* v) {
    over_threads(groups, [&](int64_t g) {
      const float* src = w + g * rows * cols;
      auto* dst = reinterpret_cast<uint32_t*>(v + g * rows * cols / 2);
      bf16::pack_blocks(src, head * cols, dst);
      std::vector<float> column(static_cast<size_t>(tail));
      for (int64_t c = 0; c < cols; ++c) {
        for (int64_t j = 0; j < tail; ++j) column[j] = src[(head + j) * cols + c];
        bf16::pack_blocks(column.data(), tail, dst + (head * cols + c * tail) / 2);
      }
    });
  };
  return derived_copy(w, size, groups * rows, cols, WeightForm::bf16_blocks_tail_t, tail, 2,
                      storage, fill);
}

}  // namespace aha
