// DeepSeek Sparse Attention under keep routing: the engine records each token's selected keys,
// and a training forward that replays them reproduces the sampled logprobs even when its own
// indexer would now choose other keys.
#include <gtest/gtest.h>

#include <cmath>

#include "../policy/test_configs.h"
#include "aha/core/rng.h"
#include "aha/policy/model.h"
#include "aha/rollout/engine.h"
#include "test_requests.h"

namespace aha::rollout {
namespace {

TEST(Engine, KeepRoutingReplaysTheDsaSelectionAfterTheIndexerMoved) {
  policy::Model<float> m(policy::ModelConfig::from_json(policy::testing::tiny_v32_json(3)));
  m.init_random(17, 0.3);
  EngineOptions opts;
  opts.record_routing = true;
  auto reqs = testing::requests_for(m.config().vocab_size, 3, 2, 12);
  const auto out = Engine(m, opts).generate(reqs);
  // The recomputing indexer is not the sampler's (an FP8 indexer, or a later step's weights).
  Rng rng(3);
  for (const auto& e : m.table().entries()) {
    if (e.name.find(".indexer.") == std::string::npos) continue;
    for (size_t i = 0; i < e.numel; ++i) m.params()[e.offset + i] += float(0.5 * rng.normal());
  }
  const std::vector<int64_t> widths = m.replay_widths();
  ASSERT_EQ(widths.size(), 3u);  // both layers' selections, then layer 1's experts
  int moved = 0, compared = 0;
  for (const Rollout& comp : out) {
    std::vector<int32_t> seq = reqs[comp.group].prompt;
    seq.insert(seq.end(), comp.completion_ids.begin(), comp.completion_ids.end());
    ASSERT_EQ(comp.routing.size(), widths.size());
    auto replay = comp.routing;
    for (size_t l = 0; l < replay.size(); ++l) {
      ASSERT_EQ(replay[l].size(), (seq.size() - 1) * widths[l]);
      replay[l].resize(seq.size() * widths[l], -1);  // the last token was never fed
    }
    const auto batch = policy::Batch::from_sequences({seq});
    policy::ForwardOptions fo;
    fo.replay_topk = &replay;
    policy::Activations<float> replayed, fresh;
    m.forward(batch, fo, replayed);
    m.forward(batch, {}, fresh);
    const size_t p = reqs[comp.group].prompt.size();
    for (size_t i = 0; i < comp.completion_ids.size(); ++i) {
      EXPECT_NEAR(comp.sampled_logprobs[i], replayed.logprob[p - 1 + i], 1e-4) << i;
      moved += std::abs(comp.sampled_logprobs[i] - fresh.logprob[p - 1 + i]) > 1e-4;
      ++compared;
    }
  }
  EXPECT_GT(moved, compared / 4) << "the perturbed indexer still chose the sampled keys";
}

}  // namespace
}  // namespace aha::rollout
