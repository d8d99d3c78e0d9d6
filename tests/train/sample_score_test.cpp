// The pipeline's scoring of environment episodes: the env reward sums the step rewards, and
// under process supervision each step reward credits the policy turn that earned it.
#include <gtest/gtest.h>

#include <cmath>

#include "aha/rewards/reward.h"
#include "aha/train/sample_score.h"

namespace aha::train {
namespace {

// reset [0,4) | assistant [4,10) | tool [10,14) reward -0.1 | assistant [14,20) | done, reward 1
Rollout episode() {
  Rollout r;
  r.completion_ids.assign(20, 7);
  r.completion_text = "episode";
  auto tool = [](int64_t b, int64_t e, double reward) {
    Turn t{"tool", b, e, "obs", "game", "ok", 0.0};
    t.reward = reward;
    return t;
  };
  r.turns = {tool(0, 4, 0.5), {"assistant", 4, 10, "a", "", "", 0.0}, tool(10, 14, -0.1),
             {"assistant", 14, 20, "b", "", "", 0.0}, tool(20, 20, 1.0)};
  return r;
}

TEST(SampleScore, EnvStepRewardsCreditThePolicyTurns) {
  Rollout r = episode();
  r.reward = 0.25;
  ASSERT_TRUE(set_env_step_rewards(r));
  // The reset's reward credits no token; the done step and the episode's score share the end.
  EXPECT_EQ(r.step_ends, (std::vector<int64_t>{10, 20}));
  ASSERT_EQ(r.step_rewards.size(), 2u);
  EXPECT_DOUBLE_EQ(r.step_rewards[0], -0.1);
  EXPECT_DOUBLE_EQ(r.step_rewards[1], 1.25);

  Rollout plain;
  plain.completion_ids.assign(5, 7);
  plain.turns = {{"assistant", 0, 5, "a", "", "", 0.0}};
  EXPECT_FALSE(set_env_step_rewards(plain));
  EXPECT_TRUE(plain.step_ends.empty());
}

TEST(SampleScore, EnvRewardSumsTheStepsAndRewardsSeeTheTurns) {
  auto set = rewards::RewardSet::from_json(Json::array({Json{{"name", "env"}}}),
                                           rewards::builtin_registry());
  std::vector<Rollout> rs = {episode(), Rollout{}};
  rs[1].completion_ids = {7};
  const Json row = Json::object();
  score(rs, {&row, &row}, set, "env");
  EXPECT_DOUBLE_EQ(rs[0].reward, 0.5 - 0.1 + 1.0);
  EXPECT_EQ(std::get<2>(rs[0].reward_parts[0])["step_rewards"].size(), 3u);
  EXPECT_DOUBLE_EQ(rs[1].reward, 0.0);  // a single-turn sample has no steps
  EXPECT_TRUE(rs[0].step_ends.empty());  // no process supervision asked
}

}  // namespace
}  // namespace aha::train
