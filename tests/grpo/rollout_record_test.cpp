// The one rollout record: what the run log and the data-parallel gather need survives its JSON
// line, and the same line is a valid rollout file entry.
#include <gtest/gtest.h>

#include <cmath>

#include "aha/grpo/rollouts.h"

namespace aha::grpo {
namespace {

RolloutLimits limits() {
  RolloutLimits lim;
  lim.vocab = 50;
  lim.max_positions = 32;
  lim.moe_layers = 2;
  lim.experts = 4;
  lim.experts_per_tok = 2;
  return lim;
}

TEST(RolloutRecord, JsonLineKeepsEveryLoggedField) {
  Rollout x;
  x.group = 3;
  x.prompt_id = "p7";
  x.sample_index = 2;
  x.prompt_ids = {1, 2, 3};
  x.completion_ids = {4, 5};
  x.prompt_text = "2+2?";
  x.completion_text = "4";
  x.finish_reason = "length";
  x.reward = 0.5;
  x.correct = 1;
  x.reward_parts = {{"format", 0.25, Json::object()}, {"math", 1.0, Json{{"pred", "4"}}}};
  x.old_logprobs = {-0.5f, -1.25f};
  x.ref_logprobs = {-0.75f, -1.0f};
  x.advantage = 0.125;
  x.step_ends = {1, 2};
  x.step_rewards = {0.0, 1.0};
  x.routing = {{0, 1, 2, 3, 1, 2, 0, 3}, {3, 2, 1, 0, 2, 1, 0, 1}};  // 4 positions, K = 2
  x.kept_ids = {{4, 9}, {}};
  x.learn = false;
  x.logged_advantage = -0.375;
  RolloutLimits lim = limits();
  lim.logged_rows = true;
  const Rollout y = rollout_from_json(rollout_to_json(x), "test", 1, lim);
  EXPECT_EQ(y.group, x.group);
  EXPECT_EQ(y.prompt_id, x.prompt_id);
  EXPECT_EQ(y.sample_index, x.sample_index);
  EXPECT_EQ(y.prompt_ids, x.prompt_ids);
  EXPECT_EQ(y.completion_ids, x.completion_ids);
  EXPECT_EQ(y.prompt_text, x.prompt_text);
  EXPECT_EQ(y.completion_text, x.completion_text);
  EXPECT_EQ(y.finish_reason, x.finish_reason);
  EXPECT_EQ(y.reward, x.reward);
  EXPECT_EQ(y.correct, x.correct);
  EXPECT_EQ(y.reward_parts, x.reward_parts);
  EXPECT_EQ(y.old_logprobs, x.old_logprobs);
  EXPECT_EQ(y.ref_logprobs, x.ref_logprobs);
  EXPECT_EQ(y.advantage, x.advantage);
  EXPECT_EQ(y.step_ends, x.step_ends);
  EXPECT_EQ(y.step_rewards, x.step_rewards);
  EXPECT_EQ(y.routing, x.routing);
  EXPECT_EQ(y.kept_ids, x.kept_ids);
  EXPECT_EQ(y.learn, x.learn);
  EXPECT_EQ(y.logged_advantage, x.logged_advantage);
}

// A rollout that was not learned from (an engine error) has no tokens and no reward: the gather
// carries it, a rollout file refuses it.
TEST(RolloutRecord, UnlearnedRowsTravelButAreNoFileEntry) {
  Rollout x;
  x.prompt_id = "bad";
  x.finish_reason = "error";
  x.learn = false;
  const Json j = rollout_to_json(x);
  EXPECT_TRUE(j["reward"].is_null());
  RolloutLimits lim = limits();
  EXPECT_THROW(rollout_from_json(j, "f.jsonl", 4, lim), Error);
  lim.logged_rows = true;
  const Rollout y = rollout_from_json(j, "rank 1", 0, lim);
  EXPECT_TRUE(std::isnan(y.reward));
  EXPECT_EQ(y.finish_reason, "error");
  EXPECT_FALSE(y.learn);
}

}  // namespace
}  // namespace aha::grpo
