// The countdown task end to end: generated problems are solvable under the countdown reward,
// flawed documents fail it, and splits and files behave.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "aha/datasets/synthetic.h"
#include "aha/datasets/source.h"
#include "aha/rewards/reward.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

using namespace testing_tiny;

double countdown_score(const Json& row, const std::string& completion) {
  static auto reward = rewards::builtin_registry().create("countdown", Json::object());
  return reward->score({"", completion, &row, -1}).score;
}

TEST(Countdown, EveryGeneratedAnswerSolvesItsProblem) {
  datasets::CountdownTask t;
  auto rows = datasets::countdown_problems(300, 11, t, false);
  ASSERT_EQ(rows.size(), 300u);
  std::set<std::string> questions;
  for (const auto& e : rows) {
    EXPECT_EQ(countdown_score(e.row, "<answer> " + e.row["answer"].get<std::string>() + " </answer>"), 1.0)
        << e.row.dump();
    const size_t n = e.row["numbers"].size();
    EXPECT_TRUE(n >= 3 && n <= 4);
    EXPECT_GT(e.row["target"].get<int64_t>(), 0);
    questions.insert(e.row["question"]);
  }
  EXPECT_EQ(questions.size(), rows.size());
  // Held-out problems never appear in training.
  for (const auto& e : datasets::countdown_problems(100, 11, {.split = "eval"}, false)) {
    EXPECT_EQ(questions.count(e.row["question"]), 0u);
  }
}

TEST(Countdown, FlawedDocumentsFailTheReward) {
  datasets::CountdownTask t;
  t.p_wrong_answer = 0.3;
  t.p_no_format = 0.0;
  auto docs = datasets::countdown_problems(400, 5, t, true);
  int good = 0;
  for (const auto& e : docs) {
    const std::string text = e.row["text"];
    good += countdown_score(e.row, text.substr(text.find("Assistant:"))) == 1.0;
  }
  // About 70% are right; swapping an operator can by chance keep the value.
  EXPECT_GT(good, 400 * 0.6);
  EXPECT_LT(good, 400 * 0.8);
}

TEST(Countdown, DataConfigAndFileSplits) {
  Json data = {{"train", "synthetic:countdown"}, {"numbers", {2, 2}}, {"max_number", 9}, {"synthetic_size", 50}};
  auto rows = datasets::load_examples(data, "train", 1);
  ASSERT_FALSE(rows.empty());
  for (const auto& e : rows) EXPECT_EQ(e.row["numbers"].size(), 2u);
  // A file split by question hash: train and eval partition it, the same way every time.
  const std::string path = fresh_dir("split") + ".jsonl";
  {
    std::ofstream f(path);
    for (int i = 0; i < 400; ++i) f << Json{{"prompt", "q" + std::to_string(i)}, {"answer", "1"}}.dump() << "\n";
  }
  Json file = {{"train", path}, {"eval", path}, {"eval_fraction", 0.2}};
  auto train = datasets::load_examples(file, "train", 0), eval = datasets::load_examples(file, "eval", 0);
  EXPECT_EQ(train.size() + eval.size(), 400u);
  EXPECT_NEAR(double(eval.size()), 80.0, 25.0);
  std::set<std::string> seen;
  for (const auto& e : train) seen.insert(e.row.value("question", e.row.value("prompt", "")));
  for (const auto& e : eval) EXPECT_EQ(seen.count(e.row.value("question", e.row.value("prompt", ""))), 0u);
  EXPECT_EQ(datasets::load_examples(file, "eval", 9).size(), eval.size());
  file["eval_fraction"] = 1.5;
  EXPECT_THROW(datasets::load_examples(file, "train", 0), Error);
}

}  // namespace
}  // namespace aha::grpo
