// DeepSeek Sparse Attention's indexer loss in pretraining: the dense warm-up trains the indexer
// alone, the sparse stage trains it beside the LM loss, and both lower it; bad keys are named.
#include <gtest/gtest.h>

#include "aha/core/error.h"
#include "aha/grpo/pretrain.h"
#include "aha/policy/checkpoint.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

using namespace testing_tiny;

// The tiny checkpoint as DeepSeek-V3.2: a query latent for the indexer, 8 keys per query.
std::unique_ptr<policy::Model<float>> dsa_checkpoint(const std::string& dir) {
  Json cfg = policy::ModelConfig::load(tiny_checkpoint() + "/config.json").to_json();
  cfg["model_type"] = "deepseek_v32";
  cfg["q_lora_rank"] = 32;
  cfg["index_n_heads"] = 2;
  cfg["index_head_dim"] = 32;
  cfg["index_topk"] = 8;
  auto m = std::make_unique<policy::Model<float>>(policy::ModelConfig::from_json(cfg));
  m->init_random(3);
  policy::SaveOptions so;
  so.copy_tokenizer_from = tiny_checkpoint();
  policy::save_model(*m, dir, so);
  return m;
}

// Tensors whose values changed between the start and `dir`'s final model: {indexer, other}.
std::pair<int, int> moved(const policy::Model<float>& start, const std::string& dir) {
  const auto trained = policy::load_model<float>(dir + "/final");
  std::pair<int, int> n{0, 0};
  for (const auto& e : start.table().entries()) {
    const float* a = start.params().data() + e.offset;
    const float* b = trained->params().data() + trained->table().at(e.name).offset;
    if (std::equal(a, a + e.numel, b)) continue;
    ++(e.name.find(".indexer.") != std::string::npos ? n.first : n.second);
  }
  return n;
}

// The indexer loss of each step of a 16-step run on `ckpt`.
std::vector<double> indexer_losses(const std::string& ckpt, const std::string& out,
                                   const char* stage, double weight) {
  Json raw = {{"model", ckpt},
              {"output_dir", out},
              {"data", {{"train", "synthetic:addition"}, {"size", 200}}},
              {"steps", 16},
              {"batch_tokens", 256},
              {"indexer_loss_weight", weight},
              {"indexer_stage", stage},
              {"schedule", {{"lr", 1e-2}}}};
  std::vector<double> loss;
  pretrain(PretrainConfig::from_json(raw), raw, false,
           [&](const PretrainReport& r) { loss.push_back(r.metrics["indexer_loss"]); }, 0);
  EXPECT_EQ(loss.size(), 16u);
  return loss;
}

double mean_of_last(const std::vector<double>& v, size_t n) {
  double s = 0;
  for (size_t i = v.size() - n; i < v.size(); ++i) s += v[i];
  return s / double(n);
}

// The dense warm-up: the loss over every causal key falls and only the indexer moves.
TEST(Pretrain, IndexerDenseWarmUpTrainsTheIndexerAlone) {
  const std::string ckpt = fresh_dir("dsa_ckpt");
  const auto start = dsa_checkpoint(ckpt);
  const std::string out = fresh_dir("pretrain_dsa_dense");
  const auto loss = indexer_losses(ckpt, out, "dense", 1.0);
  const double first = (loss[0] + loss[1]) / 2, last = mean_of_last(loss, 2);
  EXPECT_GT(first, 0.0);
  EXPECT_LT(last, 0.7 * first) << "indexer loss " << first << " -> " << last;
  const auto [indexer, other] = moved(*start, out);
  EXPECT_GT(indexer, 0);
  EXPECT_EQ(other, 0) << "the dense warm-up trains the indexer alone";
}

// The sparse stage: the LM loss trains the model (its attention sharpens, so the loss over the
// selection grows from ~0 at init), and the indexer loss keeps the indexer closer to it than a
// run whose indexer loss has no weight.
TEST(Pretrain, IndexerSparseStageTracksTheAttention) {
  const std::string ckpt = fresh_dir("dsa_ckpt_sparse");
  const auto start = dsa_checkpoint(ckpt);
  const std::string out = fresh_dir("pretrain_dsa_sparse");
  const auto trained = indexer_losses(ckpt, out, "sparse", 1.0);
  const auto untrained = indexer_losses(ckpt, fresh_dir("pretrain_dsa_sparse0"), "sparse", 1e-12);
  EXPECT_LT(mean_of_last(trained, 4), 0.7 * mean_of_last(untrained, 4))
      << "with weight " << mean_of_last(trained, 4) << ", without "
      << mean_of_last(untrained, 4);
  const auto [indexer, other] = moved(*start, out);
  EXPECT_GT(indexer, 0);
  EXPECT_GT(other, 0) << "the sparse stage trains the model beside the indexer";
}

TEST(Pretrain, IndexerLossKeysAreCheckedByName) {
  Json raw = {{"model", tiny_checkpoint()},
              {"output_dir", fresh_dir("pretrain_dsa_bad")},
              {"data", {{"train", "synthetic:addition"}, {"size", 16}}},
              {"indexer_loss_weight", 1.0}};
  auto expect_error = [](const Json& j, bool construct, const std::string& key) {
    try {
      const PretrainConfig c = PretrainConfig::from_json(j);
      if (construct) pretrain(c, j, false, {}, 0);
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_error(raw, true, "indexer_loss_weight");  // tiny has no indexer
  Json bad = raw;
  bad["indexer_stage"] = "warm";
  expect_error(bad, false, "indexer_stage");
  bad = raw;
  bad["indexer_loss_weight"] = -1.0;
  expect_error(bad, false, "indexer_loss_weight");
}

}  // namespace
}  // namespace aha::grpo
