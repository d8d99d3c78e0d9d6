// GRPO under `precision: bf16`: the reward rises as in fp32, the run records its precision, and
// a bad value is one error naming the key.
#include <gtest/gtest.h>

#include "aha/core/error.h"
#include "aha/core/gemm_bf16.h"
#include "aha/grpo/trainer.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

using namespace testing_tiny;

TEST(TrainerPrecision, Bf16RunLearnsAndRestoresThePrecision) {
  Json raw = base_config(fresh_dir("learn_bf16"));
  raw["grpo"]["steps"] = 14;
  raw["grpo"]["save_every"] = 0;
  raw["precision"] = "bf16";
  auto reg = registry();
  std::vector<double> rewards;
  {
    Trainer t(TrainConfig::from_json(raw), raw, false, &reg);
    EXPECT_EQ(matmul_precision(), MatmulPrecision::bf16);
    t.run([&](const StepReport& r) { rewards.push_back(r.metrics["reward_mean"]); });
  }
  EXPECT_EQ(matmul_precision(), MatmulPrecision::fp32) << "the trainer's scope ends with it";
  ASSERT_EQ(rewards.size(), 14u);
  const double first = (rewards[0] + rewards[1] + rewards[2]) / 3;
  const double last = (rewards[11] + rewards[12] + rewards[13]) / 3;
  EXPECT_GT(last, first + 0.1) << "first steps " << first << ", last steps " << last;
}

TEST(TrainerPrecision, BadPrecisionNamesTheKey) {
  Json raw = base_config(fresh_dir("bad_precision"));
  raw["precision"] = "fp16";
  try {
    TrainConfig::from_json(raw);
    FAIL() << "fp16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("precision: 'fp16'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aha::grpo
