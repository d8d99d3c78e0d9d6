// The reward API: registry with JSON params, weighted RewardSet, batch scoring, text rewards,
// and both plugin kinds (the example shared library and the example Python command).
#include <gtest/gtest.h>

#include <cmath>

#include "aha/core/error.h"
#include "aha/rewards/plugin.h"
#include "aha/rewards/reward.h"
#include "aha/rewards/text_rewards.h"

namespace aha::rewards {
namespace {

const std::string kPluginPath =
    std::string(AHA_BINARY_DIR) + "/examples/reward_plugin/libaha_example_reward.so";
const std::string kCommandPath =
    std::string(AHA_SOURCE_DIR) + "/examples/reward_plugin/keyword_reward.py";

Sample sample(const std::string& completion, const Json* row = nullptr) {
  Sample s;
  s.completion = completion;
  s.row = row;
  return s;
}

TEST(TextRewards, R1Format) {
  EXPECT_TRUE(r1_format_ok("<think>a</think><answer>1</answer>"));
  EXPECT_TRUE(r1_format_ok(" <think>\nx\n</think>\n<answer>\n1\n</answer>\n"));
  EXPECT_TRUE(r1_format_ok("x</think><answer>1</answer>", /*think_in_prompt=*/true));
  EXPECT_FALSE(r1_format_ok("<think>a</think>"));
  EXPECT_FALSE(r1_format_ok("<think>a</think><answer>1</answer> trailing"));
  EXPECT_FALSE(r1_format_ok("<think>a</think><answer></answer>"));
  EXPECT_FALSE(r1_format_ok("<think>a<think>b</think><answer>1</answer>"));
  EXPECT_FALSE(r1_format_ok("<answer>1</answer><think>a</think>"));
}

TEST(TextRewards, TagCount) {
  EXPECT_EQ(tag_count_score("<think>a</think><answer>1</answer>"), 1.0);
  EXPECT_EQ(tag_count_score("<think>a</think>"), 0.5);
  EXPECT_EQ(tag_count_score("<think><think></think>"), 0.25);
  EXPECT_EQ(tag_count_score("nothing"), 0.0);
}

TEST(TextRewards, LanguageConsistency) {
  EXPECT_DOUBLE_EQ(script_share("hello world", Script::kLatin), 1.0);
  EXPECT_DOUBLE_EQ(script_share("\xE4\xBD\xA0\xE5\xA5\xBD", Script::kHan), 1.0);  // 你好
  EXPECT_DOUBLE_EQ(script_share("ab\xE4\xBD\xA0\xE5\xA5\xBD", Script::kLatin), 0.5);
  EXPECT_DOUBLE_EQ(script_share("1 + 2 = 3", Script::kLatin), 0.0);
  // LaTeX commands do not count as Latin words
  EXPECT_DOUBLE_EQ(script_share("\xE4\xBD\xA0\\frac{1}{2}\\boxed{3}", Script::kHan), 1.0);
  EXPECT_DOUBLE_EQ(script_share("\xD0\xBF\xD1\x80\xD0\xB8 x", Script::kCyrillic), 0.75);
  EXPECT_EQ(chain_of_thought("<think>abc</think><answer>1</answer>"), "abc");
  EXPECT_THROW(parse_script("klingon"), Error);
}

TEST(TextRewards, LengthShaping) {
  EXPECT_EQ(overlong_penalty(100, 1000, 200), 0.0);
  EXPECT_EQ(overlong_penalty(800, 1000, 200), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(900, 1000, 200), -0.5);
  EXPECT_EQ(overlong_penalty(1001, 1000, 200), -1.0);
  CosineParams p;
  EXPECT_DOUBLE_EQ(cosine_scaled(true, 0, p), p.max_value_correct);
  EXPECT_DOUBLE_EQ(cosine_scaled(true, p.max_len, p), p.min_value_correct);
  EXPECT_DOUBLE_EQ(cosine_scaled(false, 0, p), p.min_value_wrong);
  EXPECT_DOUBLE_EQ(cosine_scaled(false, 5 * p.max_len, p), p.max_value_wrong);
  EXPECT_GT(cosine_scaled(true, 100, p), cosine_scaled(true, 500, p));
}

TEST(TextRewards, Repetition) {
  EXPECT_EQ(repetition_penalty("a b c d e f", 3, -1.0), 0.0);
  EXPECT_NEAR(repetition_penalty("a b a b a b a b", 2, -1.0), -(1.0 - 2.0 / 7.0), 1e-12);
  EXPECT_EQ(repetition_penalty("a b", 3, -1.0), 0.0);
}

TEST(Registry, BuildsAWeightedSetFromJson) {
  auto registry = builtin_registry();
  Json spec = Json::parse(R"([
    {"name": "math", "weight": 1.0},
    {"name": "format", "weight": 0.5},
    {"name": "repetition", "weight": 0.1, "params": {"ngram_size": 2}, "label": "rep"}])");
  auto set = RewardSet::from_json(spec, registry);
  ASSERT_EQ(set.size(), 3u);
  Json row = {{"answer", "#### 4"}};
  std::string good = "<think>2+2</think><answer>4</answer>";
  ScoredSample s = set.score(sample(good, &row));
  EXPECT_DOUBLE_EQ(s.rewards.at("math"), 1.0);
  EXPECT_DOUBLE_EQ(s.rewards.at("format"), 1.0);
  EXPECT_DOUBLE_EQ(s.reward, 1.5 + 0.1 * s.rewards.at("rep"));
  EXPECT_EQ(s.details["math"]["verdict"], "equal");
  Json j = s.to_json();
  EXPECT_TRUE(j.contains("reward") && j.contains("rewards") && j.contains("details"));
  ScoredSample wrong = set.score(sample("<think>x</think><answer>5</answer>", &row));
  EXPECT_DOUBLE_EQ(wrong.rewards.at("math"), 0.0);
}

TEST(Registry, RejectsBadSpecsWithClearErrors) {
  auto registry = builtin_registry();
  EXPECT_THROW(RewardSet::from_json(Json::parse(R"([{"name": "nope"}])"), registry), Error);
  EXPECT_THROW(RewardSet::from_json(Json::parse(R"([{"name": "math", "params": {"typo": 1}}])"),
                                    registry),
               Error);
  EXPECT_THROW(RewardSet::from_json(Json::parse(R"([{"name": "math", "wieght": 1}])"), registry),
               Error);
  EXPECT_THROW(RewardSet::from_json(Json::parse(R"({"name": "math"})"), registry), Error);
  // a weight that overflows the weighted sum; -1e6 .. 1e6 is accepted (penalties are negative)
  EXPECT_THROW(RewardSet::from_json(Json::parse(R"([{"name": "math", "weight": 1e308}])"), registry),
               Error);
  EXPECT_NO_THROW(
      RewardSet::from_json(Json::parse(R"([{"name": "math", "weight": -1e6}])"), registry));
  EXPECT_THROW(RewardSet::from_json(Json::parse(R"([{"name": "math"}, {"name": "math"}])"),
                                    registry),
               Error);
  EXPECT_THROW(
      RewardSet::from_json(Json::parse(R"([{"name": "format", "params": {"pattern": "("}}])"),
                           registry),
      Error);
}

TEST(Registry, FormatPatternParam) {
  auto set = RewardSet::from_json(
      Json::parse(R"([{"name": "format", "params": {"pattern": "^Final: \\d+$"}}])"),
      builtin_registry());
  EXPECT_EQ(set.score(sample("Final: 12")).reward, 1.0);
  EXPECT_EQ(set.score(sample("Final: x")).reward, 0.0);
}

TEST(Registry, UnjudgeableSamplesScoreZeroWithAReason) {
  auto set = RewardSet::from_json(Json::parse(R"([{"name": "math"}, {"name": "code"}])"),
                                  builtin_registry());
  Json row = {{"question", "no answer field"}};
  ScoredSample s = set.score(sample("\\boxed{1}", &row));
  EXPECT_EQ(s.reward, 0.0);
  EXPECT_TRUE(s.details["math"].contains("reason"));
  EXPECT_TRUE(s.details["code"].contains("reason"));
}

TEST(Registry, BatchScoringMatchesSerialAndKeepsOrder) {
  auto set = RewardSet::from_json(Json::parse(R"([{"name": "math"}, {"name": "tag_count"}])"),
                                  builtin_registry());
  std::vector<Json> rows;
  std::vector<std::string> completions;
  for (int i = 0; i < 200; ++i) {
    rows.push_back({{"answer", std::to_string(i % 7)}});
    completions.push_back("<answer>" + std::to_string(i % 5) + "</answer>");
  }
  std::vector<Sample> samples;
  for (int i = 0; i < 200; ++i) samples.push_back(sample(completions[i], &rows[i]));
  auto batch = set.score_batch(samples, 2);
  ASSERT_EQ(batch.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(batch[i].reward, set.score(samples[i]).reward) << i;
    EXPECT_EQ(batch[i].rewards.at("math"), (i % 5) == (i % 7) ? 1.0 : 0.0) << i;
  }
}

TEST(Registry, LengthAndCosineUseTokenCountsWhenGiven) {
  auto set = RewardSet::from_json(
      Json::parse(R"([{"name": "length", "params": {"max_len": 100, "cache_len": 20}},
                      {"name": "cosine", "params": {"max_len": 100}}])"),
      builtin_registry());
  Json row = {{"answer", "3"}};
  const std::string completion = "\\boxed{3}";  // the Sample views it
  Sample s = sample(completion, &row);
  s.n_completion_tokens = 90;
  ScoredSample r = set.score(s);
  EXPECT_DOUBLE_EQ(r.rewards.at("length"), -0.5);
  EXPECT_TRUE(r.details["cosine"]["correct"].get<bool>());
  EXPECT_NEAR(r.rewards.at("cosine"), cosine_scaled(true, 90, CosineParams{-0.5, 0, 0.5, 1, 100}),
              1e-12);
}

TEST(Plugin, SharedLibraryExample) {
  auto reward = load_plugin_reward(kPluginPath, {{"keywords", {"because", "so"}}});
  Json row = Json::object();
  RewardResult yes = reward->score(sample("x because y, so z", &row));
  EXPECT_EQ(yes.score, 1.0);
  EXPECT_EQ(yes.details["found"], 2);
  EXPECT_EQ(reward->score(sample("x because y", &row)).score, 0.0);
  Json fail_row = {{"plugin_fail", true}};
  RewardResult failed = reward->score(sample("because so", &fail_row));
  EXPECT_EQ(failed.score, 0.0);
  EXPECT_NE(failed.details["reason"].get<std::string>().find("asked the plugin to fail"),
            std::string::npos);
}

TEST(Plugin, SharedLibraryThroughTheRegistry) {
  Json spec = Json::array({{{"name", "plugin"},
                            {"params", {{"path", kPluginPath}, {"params", {{"keywords", {"ok"}}}}}}}});
  auto set = RewardSet::from_json(spec, builtin_registry());
  EXPECT_EQ(set.score(sample("ok")).reward, 1.0);
}

TEST(Plugin, BrokenLibrariesGiveClearErrors) {
  try {
    load_plugin_reward("/nonexistent/libnope.so", Json::object());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load"), std::string::npos) << e.what();
  }
  try {  // a real library without the entry point
    load_plugin_reward("libm.so.6", Json::object());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not export aha_reward_plugin"), std::string::npos)
        << e.what();
  }
  try {  // the plugin rejects its params
    load_plugin_reward(kPluginPath, {{"keywords", Json::array()}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keywords"), std::string::npos) << e.what();
  }
}

CommandOptions python_command(double timeout_s = 5.0) {
  CommandOptions o;
  o.argv = {"python3", kCommandPath};
  o.params = {{"keywords", {"because"}}};
  o.timeout_s = timeout_s;
  return o;
}

TEST(Plugin, CommandExample) {
  auto reward = start_command_reward(python_command());
  Json row = Json::object();
  EXPECT_EQ(reward->score(sample("yes because", &row)).score, 1.0);
  EXPECT_EQ(reward->score(sample("no", &row)).score, 0.0);
  EXPECT_EQ(reward->score(sample("again because", &row)).details["found"], 1);
}

TEST(Plugin, CommandRestartsAfterACrashAndATimeout) {
  auto reward = start_command_reward(python_command(/*timeout_s=*/1.0));
  Json crash = {{"crash", true}};
  Json hang = {{"hang", true}};
  Json ok = Json::object();
  RewardResult r = reward->score(sample("because", &crash));
  EXPECT_EQ(r.score, 0.0);
  EXPECT_TRUE(r.details.contains("reason"));
  EXPECT_EQ(reward->score(sample("because", &ok)).score, 1.0);  // restarted
  r = reward->score(sample("because", &hang));
  EXPECT_EQ(r.score, 0.0);
  EXPECT_NE(r.details["reason"].get<std::string>().find("timed out"), std::string::npos);
  EXPECT_EQ(reward->score(sample("because", &ok)).score, 1.0);  // restarted again
}

TEST(Plugin, CommandThroughTheRegistry) {
  Json spec = Json::array(
      {{{"name", "command"},
        {"params", {{"command", {"python3", kCommandPath}}, {"params", {{"keywords", {"so"}}}}}}}});
  auto set = RewardSet::from_json(spec, builtin_registry());
  EXPECT_EQ(set.score(sample("and so on")).reward, 1.0);
  EXPECT_EQ(set.score(sample("nothing")).reward, 0.0);
  Json as_string = Json::array(
      {{{"name", "command"}, {"params", {{"command", "python3 " + kCommandPath}}}}});
  auto set2 = RewardSet::from_json(as_string, builtin_registry());
  EXPECT_EQ(set2.score(sample("therefore")).reward, 1.0);  // the script's default keyword
}

TEST(Plugin, CommandThatCannotStartIsAnError) {
  CommandOptions o;
  o.argv = {"/nonexistent/reward-program"};
  EXPECT_THROW(start_command_reward(o), Error);
}

}  // namespace
}  // namespace aha::rewards
