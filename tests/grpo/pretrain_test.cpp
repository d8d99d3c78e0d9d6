// Pretraining's shared update rule: an update with a non-finite loss or gradient is skipped, and
// more than max_nan_skips of them in a row end the run (marked failed, no final model).
#include "aha/grpo/pretrain.h"

#include <gtest/gtest.h>

#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"
#include "tiny_run.h"
#include "train/stopped_run.h"

namespace aha::grpo {
namespace {

using namespace testing_tiny;

TEST(Pretrain, StopsAfterMaxNanSkipsNonFiniteUpdates) {
  const std::string out = fresh_dir("pretrain_nan");
  // A learning rate this high overflows the weights after one step: every later update is NaN.
  const Json raw = {{"model", tiny_checkpoint()},
                    {"output_dir", out},
                    {"data", {{"train", "synthetic:addition"}, {"size", 64}}},
                    {"steps", 20},
                    {"batch_tokens", 64},
                    {"max_nan_skips", 2},
                    {"schedule", {{"lr", 1e30}}}};
  train::testing::expect_stopped_by_nan(
      [&] { pretrain(PretrainConfig::from_json(raw), raw, false, {}, 0); }, out, 2);
  Json bad = raw;
  bad["max_nan_skips"] = -1;
  EXPECT_THROW(PretrainConfig::from_json(bad), Error);
  bad = raw;
  bad["output_dir"] = "";
  EXPECT_THROW(PretrainConfig::from_json(bad), Error);
}

// The tiny checkpoint with an MTP module (random weights), saved at dir.
std::unique_ptr<policy::Model<float>> mtp_checkpoint(const std::string& dir, uint64_t seed) {
  Json cfg = policy::ModelConfig::load(tiny_checkpoint() + "/config.json").to_json();
  cfg["num_nextn_predict_layers"] = 1;
  auto m = std::make_unique<policy::Model<float>>(policy::ModelConfig::from_json(cfg));
  m->init_random(seed);
  policy::SaveOptions so;
  so.copy_tokenizer_from = tiny_checkpoint();
  policy::save_model(*m, dir, so);
  return m;
}

// DeepSeek-V3's MTP loss in pretraining: it falls as the module learns the token after next,
// and a model without the module is refused by name.
TEST(Pretrain, MtpLossFallsAndNeedsTheModule) {
  const std::string ckpt = fresh_dir("mtp_ckpt");
  mtp_checkpoint(ckpt, 1);
  Json raw = {{"model", ckpt},
              {"output_dir", fresh_dir("pretrain_mtp")},
              {"data", {{"train", "synthetic:addition"}, {"size", 400}}},
              {"steps", 30},
              {"batch_tokens", 256},
              {"mtp_weight", 0.3},
              {"schedule", {{"lr", 3e-3}}}};
  std::vector<double> mtp;
  pretrain(PretrainConfig::from_json(raw), raw, false,
           [&](const PretrainReport& r) { mtp.push_back(r.metrics["mtp_loss"]); }, 0);
  ASSERT_EQ(mtp.size(), 30u);
  const double first = (mtp[0] + mtp[1] + mtp[2]) / 3, last = (mtp[27] + mtp[28] + mtp[29]) / 3;
  EXPECT_GT(first, 0.0);
  EXPECT_LT(last, first - 0.5) << "MTP loss " << first << " -> " << last;
  raw["model"] = tiny_checkpoint();
  raw["output_dir"] = fresh_dir("pretrain_mtp_missing");
  try {
    pretrain(PretrainConfig::from_json(raw), raw, false, {}, 0);
    ADD_FAILURE() << "a model without an MTP module was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_nextn_predict_layers"), std::string::npos) << e.what();
  }
}

// mtp_detached: only the module learns; every other tensor (trunk, main head) keeps its bits.
TEST(Pretrain, DetachedMtpTrainsOnlyTheModule) {
  const std::string ckpt = fresh_dir("mtp_detached_ckpt");
  const auto m = mtp_checkpoint(ckpt, 2);
  const std::string out = fresh_dir("pretrain_mtp_detached");
  Json raw = {{"model", ckpt},
              {"output_dir", out},
              {"data", {{"train", "synthetic:addition"}, {"size", 200}}},
              {"steps", 12},
              {"batch_tokens", 256},
              {"mtp_weight", 1.0},
              {"mtp_detached", true},
              {"optimizer", {{"weight_decay", 0.1}}},
              {"schedule", {{"lr", 3e-3}}}};
  std::vector<double> mtp;
  pretrain(PretrainConfig::from_json(raw), raw, false,
           [&](const PretrainReport& r) { mtp.push_back(r.metrics["mtp_loss"]); }, 0);
  EXPECT_LT(mtp.back(), mtp.front()) << "MTP loss " << mtp.front() << " -> " << mtp.back();
  auto trained = policy::load_model<float>(out + "/final");
  const std::string prefix = "model.layers." + std::to_string(m->config().num_hidden_layers) + ".";
  int64_t moved = 0;
  for (const auto& e : m->table().entries()) {
    const bool module = e.name.rfind(prefix, 0) == 0;
    const float* a = m->params().data() + e.offset;
    const float* b = trained->params().data() + trained->table().at(e.name).offset;
    const bool same = std::equal(a, a + e.numel, b);
    if (!module) EXPECT_TRUE(same) << e.name << " changed";
    moved += module && !same;
  }
  EXPECT_GT(moved, 5);
  Json bad = raw;
  bad["mtp_weight"] = 0.0;
  EXPECT_THROW(PretrainConfig::from_json(bad), Error);
}

}  // namespace
}  // namespace aha::grpo
