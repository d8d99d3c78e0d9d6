// backward() reports gradient ranges as they become final (what data-parallel training overlaps
// its allreduce with): the ranges cover the gradients once, in grad_ranges() order, and each
// holds its final values when reported — also with tied embeddings.
#include <gtest/gtest.h>

#include "aha/policy/model.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

void check(const Json& cfg) {
  Model<float> m(ModelConfig::from_json(cfg));
  m.init_random(3);
  Batch b = Batch::from_sequences({{1, 5, 7, 2, 9}, {3, 4, 6}});
  Activations<float> acts;
  m.forward(b, {}, acts);
  std::vector<float> dl(acts.logprob.size(), 0.0f);
  for (size_t t = 0; t < dl.size(); ++t) dl[t] = acts.targets[t] >= 0 ? 0.3f : 0.0f;
  m.zero_grad();
  std::vector<std::pair<size_t, size_t>> seen;
  std::vector<std::vector<float>> snapshot;
  Model<float>::GradsReady ready = [&](size_t lo, size_t hi) {
    seen.emplace_back(lo, hi);
    snapshot.emplace_back(m.grads().begin() + lo, m.grads().begin() + hi);
  };
  m.backward(acts, dl.data(), nullptr, {.seq = 0.5, .batch = 0.5}, nullptr, &ready);
  std::vector<std::pair<size_t, size_t>> want;
  for (auto r : m.grad_ranges()) {
    if (r.second > r.first) want.push_back(r);
  }
  EXPECT_EQ(seen, want);
  std::vector<int> covered(m.grads().size(), 0);
  for (size_t k = 0; k < seen.size(); ++k) {
    for (size_t i = seen[k].first; i < seen[k].second; ++i) ++covered[i];
    // Nothing written after its report.
    EXPECT_TRUE(std::equal(snapshot[k].begin(), snapshot[k].end(), m.grads().begin() + seen[k].first))
        << "range " << k << " changed after it was reported";
  }
  EXPECT_TRUE(std::all_of(covered.begin(), covered.end(), [](int c) { return c == 1; }));
}

TEST(GradRanges, CoverOnceAndAreFinalWhenReported) {
  check(testing::tiny_v3_json());
  check(testing::tiny_llama_json());  // tied embeddings
  check(testing::tiny_qwen2_json());
}

}  // namespace
}  // namespace aha::policy
