// The exact arithmetic behind "countdown" and "equations": evaluation, equation finding, and
// both rewards on correct, wrong and hostile answers.
#include <gtest/gtest.h>

#include "aha/rewards/arith.h"
#include "aha/rewards/reward.h"

namespace aha::rewards {
namespace {

double value(const std::string& e) {
  auto v = eval_arith(e);
  EXPECT_TRUE(v.has_value()) << e;
  return v ? double(v->num) / double(v->den) : std::nan("");
}

TEST(Arith, EvaluatesExactly) {
  EXPECT_EQ(value("1 + 2 * 3"), 7);
  EXPECT_EQ(value("(1 + 2) * 3"), 9);
  EXPECT_EQ(value("7 / 2 * 2"), 7);  // rational, not integer division
  EXPECT_EQ(value("10 - 4 - 3"), 3);  // left associative
  EXPECT_EQ(value("-3 + 5"), 2);
  EXPECT_EQ(value("6 \xC3\xB7 3 \xC3\x97 2"), 4);  // ÷ ×
  auto third = eval_arith("1 / 3");
  ASSERT_TRUE(third);
  EXPECT_EQ(int64_t(third->num), 1);
  EXPECT_EQ(int64_t(third->den), 3);
  std::vector<int64_t> nums;
  eval_arith("(25 - 5) * 4 / 2", &nums);
  EXPECT_EQ(nums, (std::vector<int64_t>{25, 5, 4, 2}));
  for (const char* bad : {"", "1 +", "2 ** 3", "1 / 0", "(1 + 2", "1 + 2)", "abc", "1.5 + 2",
                          "__import__('os')", "99999999999999999999 + 1", "1e9"}) {
    EXPECT_FALSE(eval_arith(bad).has_value()) << bad;
  }
  // Deep nesting and huge products stay bounded.
  EXPECT_FALSE(eval_arith(std::string(200, '(') + "1" + std::string(200, ')')).has_value());
  EXPECT_FALSE(eval_arith("999999999 * 999999999 * 999999999 * 999999999").has_value());
}

TEST(Arith, FindsEquationsInWorkedSteps) {
  const std::string text = "<think> 7 + 5 = 12 , 3 + 4 + 1 = 8 , so 37 + 45 = 83 </think> x = 4";
  auto eqs = find_equations(text);
  ASSERT_EQ(eqs.size(), 3u);  // "x = 4" has no operator
  EXPECT_TRUE(eqs[0].correct);
  EXPECT_EQ(eqs[0].lhs, "7 + 5");
  EXPECT_EQ(text.substr(0, eqs[0].end), "<think> 7 + 5 = 12");
  EXPECT_TRUE(eqs[1].correct);
  EXPECT_EQ(eqs[2].lhs, "37 + 45");
  EXPECT_FALSE(eqs[2].correct);
}

Json score(const std::string& name, const std::string& completion, const Json& row, const Json& params = Json::object()) {
  auto r = builtin_registry().create(name, params);
  Sample s{"", completion, &row, -1};
  RewardResult res = r->score(s);
  return {{"score", res.score}, {"details", res.details}};
}

TEST(Arith, CountdownReward) {
  const Json row = {{"numbers", {3, 5, 7}}, {"target", 22}};
  EXPECT_EQ(score("countdown", "<answer> 3 * 5 + 7 </answer>", row)["score"], 1.0);
  EXPECT_EQ(score("countdown", "<answer>(7 + 5) * 3 - 14</answer>", row)["score"], 0.0);  // 14 not given
  EXPECT_EQ(score("countdown", "<answer> 3 * 5 + 7 = 22 </answer>", row)["score"], 1.0);
  EXPECT_EQ(score("countdown", "<answer> 3 * 7 + 5 </answer>", row)["score"], 0.0);  // = 26
  EXPECT_EQ(score("countdown", "<answer> 5 * 5 - 3 </answer>", row)["score"], 0.0);  // 5 twice, no 7
  EXPECT_EQ(score("countdown", "<answer> 3 * 5 + 7 + 0 </answer>", row)["score"], 0.0);
  EXPECT_EQ(score("countdown", "<answer> system('rm -rf /') </answer>", row)["score"], 0.0);
  // use_all = false: a subset may reach the target.
  const Json row2 = {{"numbers", {3, 5, 7, 100}}, {"target", 22}};
  EXPECT_EQ(score("countdown", "<answer> 3 * 5 + 7 </answer>", row2)["score"], 0.0);
  EXPECT_EQ(score("countdown", "<answer> 3 * 5 + 7 </answer>", row2, {{"use_all", false}})["score"], 1.0);
  // Format score for a valid expression that misses.
  EXPECT_EQ(score("countdown", "<answer> 3 * 7 + 5 </answer>", row, {{"format_score", 0.1}})["score"], 0.1);
  EXPECT_EQ(score("countdown", "no answer", Json{{"numbers", {1}}})["score"], 0.0);
}

TEST(Arith, EquationsRewardReportsSteps) {
  const std::string c = "<think> 7 + 5 = 12 , 1 + 3 + 1 = 6 </think> <answer> 62 </answer>";
  Json r = score("equations", c, Json::object());
  EXPECT_EQ(r["score"], 0.5);
  const Json& steps = r["details"]["steps"];
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0]["reward"], 1.0);
  EXPECT_EQ(steps[1]["reward"], 0.0);
  EXPECT_EQ(c.substr(0, steps[1]["end"].get<size_t>()), "<think> 7 + 5 = 12 , 1 + 3 + 1 = 6");
  EXPECT_EQ(score("equations", "no maths here", Json::object())["score"], 0.0);
}

}  // namespace
}  // namespace aha::rewards
