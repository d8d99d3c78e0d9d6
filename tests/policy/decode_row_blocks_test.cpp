// decode_row_blocks (policy/src/attention.cpp): how a decode step's rows are split over the cores.
// The blocks cover the rows in order with their positions, a cache's consecutive rows stay in
// one block, and a step that would put one cache in two blocks (two threads resizing it), a
// prefill, a step with selections, a small step or one thread is not split.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <cstdint>
#include <vector>

#include "aha/core/threading.h"
#include "../../policy/src/attention_impl.h"

namespace aha::policy {
namespace {

struct Block {
  int64_t b0;
  std::vector<CacheRows*> rows;
  std::vector<int32_t> positions;
};

// The blocks fn saw, in row order; empty when the step was not split.
std::vector<Block> blocks_of(const DecodeStep& step) {
  std::vector<Block> seen;
  std::mutex m;
  const bool split = decode_row_blocks(step, [&](const DecodeStep& block, int64_t b0) {
    Block b{b0, block.rows, {}};
    b.positions.assign(block.positions, block.positions + block.rows.size());
    EXPECT_EQ(block.absorbed, step.absorbed);
    EXPECT_FALSE(block.prefill);
    const std::lock_guard<std::mutex> lock(m);
    seen.push_back(std::move(b));
  });
  EXPECT_EQ(split, !seen.empty());
  std::sort(seen.begin(), seen.end(), [](const Block& a, const Block& b) { return a.b0 < b.b0; });
  return seen;
}

struct Step {
  std::vector<CacheRows> caches;
  std::vector<int32_t> positions;
  DecodeStep step;
  // Row b uses cache cache_of[b].
  explicit Step(const std::vector<int>& cache_of) : caches(cache_of.size()) {
    for (size_t b = 0; b < cache_of.size(); ++b) {
      step.rows.push_back(&caches[cache_of[b]]);
      positions.push_back(static_cast<int32_t>(100 + b));
    }
    step.positions = positions.data();
    step.absorbed = false;
  }
};

std::vector<int> distinct(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(DecodeRowBlocks, BlocksCoverTheRowsInOrderWithTheirPositions) {
  const ThreadLimit two(2);
  if (max_threads() < 2) GTEST_SKIP() << "one core: nothing to split over";
  Step s(distinct(20));
  const std::vector<Block> blocks = blocks_of(s.step);
  ASSERT_EQ(blocks.size(), 2u);
  int64_t next = 0;
  for (const Block& b : blocks) {
    EXPECT_EQ(b.b0, next);
    for (size_t i = 0; i < b.rows.size(); ++i) {
      EXPECT_EQ(b.rows[i], s.step.rows[next + i]);
      EXPECT_EQ(b.positions[i], s.positions[next + i]);
    }
    next += static_cast<int64_t>(b.rows.size());
  }
  EXPECT_EQ(next, 20);
}

TEST(DecodeRowBlocks, ACachesRowsStayInOneBlock) {
  const ThreadLimit two(2);
  if (max_threads() < 2) GTEST_SKIP() << "one core: nothing to split over";
  // Rows 9, 10 and 11 share a cache across the even cut at 10: the cut moves past them.
  std::vector<int> cache_of = distinct(20);
  cache_of[10] = cache_of[11] = 9;
  Step s(cache_of);
  const std::vector<Block> blocks = blocks_of(s.step);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[1].b0, 12);
}

TEST(DecodeRowBlocks, StepsThatCannotSplitRunWhole) {
  {
    const ThreadLimit two(2);
    std::vector<int> cache_of = distinct(20);
    cache_of[15] = 0;  // one cache in both halves
    Step shared(cache_of);
    EXPECT_TRUE(blocks_of(shared.step).empty());
    Step small(distinct(15));
    EXPECT_TRUE(blocks_of(small.step).empty());
    Step prefill(distinct(20));
    prefill.step.prefill = true;
    EXPECT_TRUE(blocks_of(prefill.step).empty());
    Step sparse(distinct(20));
    std::vector<int32_t> selections;
    sparse.step.selections = &selections;
    EXPECT_TRUE(blocks_of(sparse.step).empty());
  }
  const ThreadLimit one(1);
  Step alone(distinct(20));
  EXPECT_TRUE(blocks_of(alone.step).empty());
}

TEST(DecodeBuffers, CacheRowsAndScratchStartOnACacheLine) {
  for (size_t n : {size_t{144}, size_t{5000}, size_t{300000}}) {
    CacheRows rows;
    rows.reserve(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(rows.data()) % kCacheLine, 0u) << n;
    ScratchBuf<float> scratch(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(scratch.data()) % kCacheLine, 0u) << n;
  }
}

}  // namespace
}  // namespace aha::policy
