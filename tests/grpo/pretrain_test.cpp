// Pretraining's shared update rule: an update with a non-finite loss or gradient is skipped, and
// more than max_nan_skips of them in a row end the run (marked failed, no final model).
#include "aha/grpo/pretrain.h"

#include <gtest/gtest.h>

#include "aha/core/error.h"
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
}

}  // namespace
}  // namespace aha::grpo
