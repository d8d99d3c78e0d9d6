// ESFT: expert scores are routing-mass shares, selection takes the fewest experts covering the
// share, the mask trains exactly the selected (and shared) experts, and an optimizer step with
// the mask moves nothing else.
#include "aha/policy/esft.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "test_configs.h"

namespace aha::policy {
namespace {

TEST(Esft, SelectsFewestExpertsCoveringTheShare) {
  ExpertScores s;
  s.layers = {1, 2};
  s.score = {{0.1, 0.5, 0.1, 0.3}, {0.25, 0.25, 0.25, 0.25}};
  EsftSelection a = select_experts(s, 0.7, false);
  EXPECT_EQ(a.experts[0], (std::vector<int32_t>{1, 3}));
  EXPECT_NEAR(a.covered[0], 0.8, 1e-12);
  EXPECT_EQ(a.experts[1], (std::vector<int32_t>{0, 1, 2}));  // ties keep the lower id first
  EXPECT_EQ(select_experts(s, 0.5, false).experts[0], (std::vector<int32_t>{1}));
  EXPECT_EQ(select_experts(s, 1.0, false).experts[1].size(), 4u);
  EXPECT_THROW(select_experts(s, 0.0, false), Error);
  EXPECT_THROW(select_experts(s, 1.5, false), Error);
  EsftSelection back = EsftSelection::from_json(a.to_json());
  EXPECT_EQ(back.experts, a.experts);
  EXPECT_EQ(back.layers, a.layers);
}

TEST(Esft, ScoresAreRoutingSharesAndMaskTrainsOnlySelectedExperts) {
  Model<float> m(ModelConfig::from_json(testing::tiny_v3_json()));
  m.init_random(3, 0.3);
  std::vector<Batch> batches = {Batch::from_sequences({{1, 2, 3, 4, 5, 6, 7}, {8, 9, 10}}),
                                Batch::from_sequences({{11, 12, 13, 14}})};
  for (EsftMetric metric : {EsftMetric::kGate, EsftMetric::kToken}) {
    ExpertScores s = expert_scores(m, batches, metric);
    ASSERT_EQ(s.layers, (std::vector<int>{1}));  // first_k_dense_replace = 1
    EXPECT_EQ(s.n_tokens, 14);
    EXPECT_NEAR(std::accumulate(s.score[0].begin(), s.score[0].end(), 0.0), 1.0, 1e-9);
  }
  ExpertScores s = expert_scores(m, batches, EsftMetric::kToken);
  // Token share: each token picks K = 3 of 8 experts, so the shares are counts / (14 * 3).
  for (double v : s.score[0]) EXPECT_NEAR(v * 42, std::round(v * 42), 1e-9);

  EsftSelection sel = select_experts(s, 0.5, true);
  std::vector<uint8_t> mask = trainable_mask(m, sel);
  EsftReport rep = esft_report(m.table(), mask);
  EXPECT_GT(rep.trainable_params, 0);
  EXPECT_LT(rep.trainable_share, 0.5);
  EXPECT_EQ(rep.total_params, m.n_params());
  EXPECT_EQ(rep.memory_saved_bytes, (rep.total_params - rep.trainable_params) * 12);
  const auto& entries = m.table().entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& n = entries[i].name;
    bool want = n.find(".shared_experts.") != std::string::npos;
    for (int32_t e : sel.experts[0]) {
      want |= n.rfind("model.layers.1.mlp.experts." + std::to_string(e) + ".", 0) == 0;
    }
    EXPECT_EQ(mask[i] != 0, want) << n;
  }

  // One SGD step with the mask: frozen tensors keep their values, selected ones move.
  OptimizerConfig oc;
  oc.kind = "sgd";
  Optimizer<float> opt(m.table(), oc);
  freeze_optimizer(opt, m.table(), mask);
  std::vector<float> before = m.params();
  Activations<float> acts;
  m.forward(batches[0], ForwardOptions{}, acts);
  std::vector<float> dlp(acts.logprob.size(), 0.0f);
  for (size_t t = 0; t < dlp.size(); ++t) dlp[t] = acts.targets[t] >= 0 ? -1.0f : 0.0f;
  m.zero_grad();
  m.backward(acts, dlp.data(), nullptr, BalanceWeights{}, nullptr, nullptr);
  apply_mask(m.table(), mask, m.grads().data());
  opt.step(m.params().data(), m.grads().data(), 0.1);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    bool moved = false;
    for (size_t j = 0; j < e.numel; ++j) moved |= m.params()[e.offset + j] != before[e.offset + j];
    if (!mask[i]) EXPECT_FALSE(moved) << e.name << " is frozen";
    if (mask[i] && e.name.find(".shared_experts.") != std::string::npos) {
      EXPECT_TRUE(moved) << e.name << " is trained";
    }
  }
}

TEST(Esft, DenseModelIsAnError) {
  Model<float> m(ModelConfig::from_json(testing::tiny_llama_json()));
  EXPECT_THROW(expert_scores(m, {Batch::from_sequences({{1, 2}})}), Error);
}

}  // namespace
}  // namespace aha::policy
