// The weight cache's lookups from many threads: each thread keeps the entries it has found until
// a scope closes, so a worker that found a weight's copy under one scope must not serve it under
// the next, whose weights may have changed or been freed and reallocated at the same address.
#include <gtest/gtest.h>
#include <tbb/parallel_for.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "aha/core/gemm_bf16.h"
#include "aha/core/weight_cache.h"

namespace aha {
namespace {

constexpr int64_t kM = 3, kN = 40, kK = 48, kWeights = 24;

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Weight i of ws times x, packed per call (no scope consulted: gemm_bf16 never caches).
std::vector<float> fresh_product(const std::vector<float>& x, const std::vector<float>& ws,
                                 int64_t i) {
  std::vector<float> y(size_t(kM * kN));
  gemm_bf16(kM, kN, kK, {x.data(), kK, false}, {ws.data() + i * kN * kK, kK, false}, y.data(), kN,
            false, nullptr, true);
  return y;
}

// Every weight's product on whichever threads TBB picks, several times each, against the fresh
// products; the count of mismatches.
int mismatches_on_all_threads(const std::vector<float>& x, const std::vector<float>& ws) {
  std::vector<std::vector<float>> want;
  for (int64_t i = 0; i < kWeights; ++i) want.push_back(fresh_product(x, ws, i));
  std::atomic<int> bad{0};
  tbb::parallel_for(int64_t{0}, 8 * kWeights, [&](int64_t t) {
    const int64_t i = t % kWeights;
    std::vector<float> y(size_t(kM * kN));
    gemm_bf16_weight(kM, kN, kK, x.data(), kK, ws.data() + i * kN * kK, y.data(), kN, false,
                     nullptr, true);
    if (std::memcmp(y.data(), want[i].data(), y.size() * sizeof(float)) != 0) ++bad;
  });
  return bad.load();
}

TEST(WeightCache, EveryThreadSeesANewScopeOverChangedOrReallocatedWeights) {
  const auto x = random_values(size_t(kM * kK), 1);
  auto ws = random_values(size_t(kWeights * kN * kK), 2);
  {
    const WeightCache scope(ws.data(), int64_t(ws.size()));
    EXPECT_EQ(mismatches_on_all_threads(x, ws), 0);
    EXPECT_GT(weight_cache_bytes(), 0);
  }
  for (float& v : ws) v = -2.0f * v + 0.25f;  // changed between two scopes over the same range
  {
    const WeightCache scope(ws.data(), int64_t(ws.size()));
    EXPECT_EQ(mismatches_on_all_threads(x, ws), 0) << "a thread kept the first scope's copies";
  }
  for (int round = 0; round < 4; ++round) {  // freed and allocated again, often at one address
    ws = random_values(ws.size(), 10 + round);
    const WeightCache scope(ws.data(), int64_t(ws.size()));
    EXPECT_EQ(mismatches_on_all_threads(x, ws), 0) << "round " << round;
  }
  EXPECT_EQ(weight_cache_bytes(), 0);
}

// Two threads, each opening and closing scopes over its own weights while the other does the
// same (a sampler thread beside the trainer's): every product is the fresh one.
TEST(WeightCache, ScopesOpenAndCloseOnTwoThreadsAtOnce) {
  const auto x = random_values(size_t(kM * kK), 3);
  std::atomic<int> bad{0};
  auto worker = [&](uint32_t seed) {
    auto ws = random_values(size_t(kWeights * kN * kK), seed);
    for (int round = 0; round < 40; ++round) {
      {
        const WeightCache scope(ws.data(), int64_t(ws.size()));
        bad += mismatches_on_all_threads(x, ws);
      }
      for (size_t i = 0; i < ws.size(); i += 7) ws[i] += 1.0f;  // between this thread's scopes
    }
  };
  std::thread a(worker, 4), b(worker, 5);
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(weight_cache_bytes(), 0);
}

}  // namespace
}  // namespace aha
