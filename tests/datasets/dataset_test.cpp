// JSONL loaders (generic, GSM8K, MATH, APPS, HumanEval), bad-line handling, the epoch cursor,
// and the synthetic generators' answers and held-out split.
#include "aha/datasets/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "aha/core/error.h"
#include "aha/datasets/synthetic.h"

namespace aha::datasets {
namespace {

std::string write_lines(const std::string& name, const std::vector<std::string>& lines) {
  auto p = std::filesystem::temp_directory_path() / ("aha_ds_" + name + "_" + std::to_string(::getpid()) + ".jsonl");
  std::ofstream out(p);
  for (const auto& l : lines) out << l << "\n";
  return p.string();
}

DataFormat fmt(const std::string& kind) { return DataFormat::from_json(Json{{"kind", kind}}); }

TEST(Datasets, FormatsAndBadLines) {
  LoadStats st;
  auto g = load_jsonl(write_lines("gsm", {R"({"question":"q1","answer":"a\n#### 1,234"})",
                                          R"({"question":"q2","answer":"no marker"})", "not json",
                                          R"({"question":"q1","answer":"dup\n#### 5"})", ""}),
                      fmt("gsm8k"), &st);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].row["answer"], "1,234");
  EXPECT_EQ(st.skipped, 2);
  EXPECT_EQ(st.duplicates, 1);
  auto m = load_jsonl(write_lines("math", {R"({"problem":"p","solution":"so \\boxed{\\frac{1}{2}} ok"})"}),
                      fmt("math"));
  EXPECT_EQ(m[0].row["answer"], "\\frac{1}{2}");
  auto a = load_jsonl(
      write_lines("apps", {R"({"question":"sum","input_output":"{\"inputs\":[\"1 2\\n\"],\"outputs\":[\"3\\n\"]}"})",
                           R"({"question":"bad","input_output":"{\"inputs\":[],\"outputs\":[]}"})"}),
      fmt("apps"), &st);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].row["tests"]["outputs"][0], "3\n");
  EXPECT_EQ(st.skipped, 1);
  auto h = load_jsonl(write_lines("he", {R"({"prompt":"def f(x):\n","test":"def check(c): assert c(1)==1","entry_point":"f"})"}),
                      fmt("humaneval"));
  EXPECT_EQ(h[0].row["entry_point"], "f");
  DataFormat strict = fmt("generic");
  strict.skip_bad_lines = false;
  EXPECT_THROW(load_jsonl(write_lines("strict", {R"({"prompt":"x"})"}), strict), Error);
  EXPECT_THROW(DataFormat::from_json(Json{{"kind", "csv"}}), Error);
  EXPECT_THROW(load_jsonl("/nonexistent.jsonl", fmt("generic")), Error);
}

TEST(Datasets, CursorIsDeterministicAndResumes) {
  DataCursor a(7, 3), b(7, 3);
  auto first = a.next(10);
  EXPECT_EQ(first, b.next(10));
  std::set<int64_t> epoch0(first.begin(), first.begin() + 7);
  EXPECT_EQ(epoch0.size(), 7u);  // one epoch is a permutation
  Json st = a.state();
  auto cont = a.next(9);
  DataCursor c(7, 3);
  c.restore(st);
  EXPECT_EQ(c.next(9), cont);
  DataCursor other(8, 3);
  EXPECT_THROW(other.restore(st), Error);
}

TEST(Datasets, SyntheticAnswersAndHeldOutSplit) {
  AdditionTask t;
  auto train = addition_problems(2000, 1, t, false);
  t.split = "eval";
  auto eval = addition_problems(200, 1, t, false);
  std::set<std::string> seen;
  for (const auto& e : train) seen.insert(e.row["question"]);
  for (const auto& e : eval) EXPECT_FALSE(seen.count(e.row["question"])) << e.row["question"];
  EXPECT_EQ(addition_solution(47, 38, false),
            "<think> 7 + 8 = 15 , 4 + 3 + 1 = 8 , so 47 + 38 = 85 </think> <answer> 85 </answer>");
  EXPECT_NE(addition_solution(47, 38, true).find("<answer> 75 </answer>"), std::string::npos);
  for (const auto& e : linear_equations(300, 2, 9)) {
    // Parse "Solve for x: A x +/- B = C." and check A * answer + B == C.
    std::string q = e.row["question"];
    long long A, B, C;
    char sign;
    ASSERT_EQ(std::sscanf(q.c_str(), "Solve for x: %lldx %c %lld = %lld.", &A, &sign, &B, &C), 4) << q;
    if (sign == '-') B = -B;
    EXPECT_EQ(A * std::stoll(e.row["answer"].get<std::string>()) + B, C) << q;
  }
}

}  // namespace
}  // namespace aha::datasets
