// The math reward's options (precision, strict, allow_set_relation, extraction targets, think
// handling) and its bounds on hostile completions, through check_math and the registry.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/rewards/math.h"
#include "aha/rewards/reward.h"

namespace aha::rewards {
namespace {

MathVerdict check(const std::string& completion, const std::string& gold,
                  const MathOptions& o = {}, const ExtractOptions& e = {}) {
  return check_math(completion, gold, o, e).verdict;
}

TEST(MathOptions, PrecisionSetsTheDecimalsCompared) {
  MathOptions two;
  two.precision = 2;
  EXPECT_EQ(check("3.14", "\\pi"), MathVerdict::kNotEqual);
  EXPECT_EQ(check("3.14", "\\pi", two), MathVerdict::kEqual);
  EXPECT_EQ(check("3.15", "\\pi", two), MathVerdict::kNotEqual);
  EXPECT_EQ(check("0.3333333", "1/3"), MathVerdict::kEqual);
  MathOptions ten;
  ten.precision = 10;
  EXPECT_EQ(check("0.3333333", "1/3", ten), MathVerdict::kEqual);  // shows 7 decimals
  EXPECT_EQ(check("0.0000001", "0"), MathVerdict::kEqual);
  EXPECT_EQ(check("0.0000001", "0", ten), MathVerdict::kNotEqual);
}

TEST(MathOptions, StrictVariableNames) {
  MathOptions loose;
  loose.strict = false;
  EXPECT_EQ(check("f(y) = y^2 + 1", "f(x) = x^2 + 1"), MathVerdict::kNotEqual);
  EXPECT_EQ(check("f(y) = y^2 + 1", "f(x) = x^2 + 1", loose), MathVerdict::kEqual);
  EXPECT_EQ(check("t^2 + 1", "x^2 + 1", loose), MathVerdict::kEqual);
  EXPECT_EQ(check("t^2 + 2", "x^2 + 1", loose), MathVerdict::kNotEqual);
  EXPECT_EQ(check("a + 2b", "2x + y", loose), MathVerdict::kEqual);  // a->y, b->x
}

// Math-Verify's asymmetry: a gold inequality accepts its interval always, a gold interval
// accepts the inequality only with allow_set_relation (off by default).
TEST(MathOptions, SetRelationComparisonIsOneWayUnlessAllowed) {
  MathOptions rel;
  rel.allow_set_relation = true;
  EXPECT_EQ(check("(2, \\infty)", "x > 2"), MathVerdict::kEqual);
  EXPECT_EQ(check("[-2, 7]", "-2 \\le x \\le 7"), MathVerdict::kEqual);
  EXPECT_EQ(check("x > 2", "(2, \\infty)"), MathVerdict::kNotEqual);
  EXPECT_EQ(check("x > 2", "(2, \\infty)", rel), MathVerdict::kEqual);
  EXPECT_EQ(check("x \\in [-2, 7]", "-2 \\le x \\le 7"), MathVerdict::kEqual);
  EXPECT_EQ(check("-2 \\le x \\le 7", "x \\in [-2, 7]"), MathVerdict::kNotEqual);
  EXPECT_EQ(check("-2 \\le x \\le 7", "x \\in [-2, 7]", rel), MathVerdict::kEqual);
  EXPECT_EQ(check("x < -1 \\text{ or } x > 2", "(-\\infty, -1) \\cup (2, \\infty)"),
            MathVerdict::kNotEqual);
  EXPECT_EQ(check("(-\\infty, -1) \\cup (2, \\infty)", "x < -1 \\text{ or } x > 2"),
            MathVerdict::kEqual);
  EXPECT_EQ(check("x > 2", "2 < x"), MathVerdict::kEqual);
}

TEST(MathOptions, EquationSolvingCanBeTurnedOff) {
  MathOptions no_solve;
  no_solve.solve_equations = false;
  EXPECT_EQ(check("x = \\pm 2", "x^2 = 4"), MathVerdict::kEqual);
  EXPECT_EQ(check("x = \\pm 2", "x^2 = 4", no_solve), MathVerdict::kNotEqual);
  EXPECT_EQ(check("x^2 = 4", "\\{-2, 2\\}", no_solve), MathVerdict::kNotEqual);
  // what is not solving still holds: the same equation up to a factor, a labelled answer
  EXPECT_EQ(check("2x^2 = 8", "x^2 = 4", no_solve), MathVerdict::kEqual);
  EXPECT_EQ(check("x = 3", "3", no_solve), MathVerdict::kEqual);
  // bounded: a cubic, a rational equation, two variables and complex roots are not solved
  EXPECT_EQ(check("x = 1", "x^3 = 1"), MathVerdict::kNotEqual);
  EXPECT_NE(check("x = 2", "\\frac{1}{x} = \\frac{1}{2}"), MathVerdict::kUnparsable);
  EXPECT_EQ(check("x = 1", "x + y = 2"), MathVerdict::kNotEqual);
  EXPECT_EQ(check("x = \\pm i", "x^2 = -1"), MathVerdict::kNotEqual);
}

// A bare gold list meets a list as a set, except (auto) when its numbers are written neither
// ascending nor descending: then they are values asked for in turn and their order counts.
TEST(MathOptions, ListOrder) {
  MathOptions any, as_written;
  any.list_order = MathOptions::ListOrder::kAny;
  as_written.list_order = MathOptions::ListOrder::kAsWritten;
  const std::string box = "The answer is $\\boxed{";
  auto in_box = [&](const std::string& p) { return box + p + "}$."; };
  // auto: sorted golds (either way round) and short lists are sets; the others are ordered
  EXPECT_EQ(check(in_box("4, 10, -2"), "-2, 4, 10"), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("-10, -8, 4"), "4, -8, -10"), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("3, -5"), "-5, 3"), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("4, .1, 2"), "0.1, 4, 2"), MathVerdict::kNotEqual);
  EXPECT_EQ(check(in_box("0.1, 4, 2"), "0.1, 4, 2"), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("\\frac{1}{10}, 4, 2"), "0.1, 4, 2"), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("\\{4, 0.1, 2\\}"), "0.1, 4, 2"), MathVerdict::kNotEqual);
  // a gold with a name, an expression or a braced set is no list of numbers: still a set
  EXPECT_EQ(check(in_box("x, 3, 1"), "3, x, 1"), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("\\{1, 3, 2\\}"), "\\{3, 1, 2\\}"), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("(1,2), (3,4), (0,0)"), "(3,4), (0,0), (1,2)"), MathVerdict::kEqual);
  // the options: any order always, or the order written always
  EXPECT_EQ(check(in_box("4, .1, 2"), "0.1, 4, 2", any), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("4, 10, -2"), "-2, 4, 10", as_written), MathVerdict::kNotEqual);
  EXPECT_EQ(check(in_box("3, -5"), "-5, 3", as_written), MathVerdict::kNotEqual);
  EXPECT_EQ(check(in_box("-5, 3"), "-5, 3", as_written), MathVerdict::kEqual);
  EXPECT_EQ(check(in_box("\\{1, 3, 2\\}"), "\\{3, 1, 2\\}", as_written), MathVerdict::kEqual);
}

TEST(MathOptions, ThinkModes) {
  const std::string inside = "<think>the answer is 6</think> I am not sure.";
  const std::string after = "<think>the answer is 6</think> The answer is 7.";
  ExtractOptions ignore, require;
  ignore.think = ThinkMode::kIgnore;
  require.think = ThinkMode::kRequire;
  EXPECT_NE(check(inside, "6"), MathVerdict::kEqual);
  EXPECT_EQ(check(inside, "6", {}, ignore), MathVerdict::kEqual);
  EXPECT_EQ(check(after, "7", {}, require), MathVerdict::kEqual);
  EXPECT_NE(check("The answer is 7.", "7", {}, require), MathVerdict::kEqual);
  EXPECT_EQ(check("The answer is 7.", "7"), MathVerdict::kEqual);
}

TEST(MathOptions, ExtractionTargetsFromParams) {
  RewardRegistry reg = builtin_registry();
  Json row = {{"answer", "42"}};
  auto score = [&](const Json& params, const std::string& completion) {
    Sample s;
    s.completion = completion;
    s.row = &row;
    return reg.create("math", params)->score(s).score;
  };
  EXPECT_EQ(score(Json::object(), "so we get 42"), 1.0);
  EXPECT_EQ(score({{"extraction", {"boxed"}}}, "so we get 42"), 0.0);
  EXPECT_EQ(score({{"extraction", {"boxed"}}}, "so \\boxed{42}"), 1.0);
  EXPECT_EQ(score({{"extraction", {"answer_is"}}}, "Answer: 42"), 1.0);
  EXPECT_EQ(score({{"think", "require"}}, "\\boxed{42}"), 0.0);
  EXPECT_EQ(score({{"precision", 2}}, "\\boxed{42.001}"), 1.0);
  EXPECT_THROW(reg.create("math", {{"extraction", {"nonsense"}}}), Error);
  EXPECT_THROW(reg.create("math", {{"think", "sometimes"}}), Error);
  EXPECT_THROW(reg.create("math", {{"precision", -1}}), Error);
  EXPECT_THROW(reg.create("math", {{"list_order", "sorted"}}), Error);
  Json row2 = {{"answer", "0.1, 4, 2"}};
  Sample s;
  s.completion = "\\boxed{4, 0.1, 2}";
  s.row = &row2;
  EXPECT_EQ(reg.create("math", Json::object())->score(s).score, 0.0);
  EXPECT_EQ(reg.create("math", {{"list_order", "any"}})->score(s).score, 1.0);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Hostile completions and golds: each decided quickly, none judged equal.
TEST(MathBounds, HostileCompletionsAreDecidedFast) {
  std::string tower = "2";
  for (int i = 0; i < 200; ++i) tower = "2^{" + tower + "}";
  std::string nest(5000, '(');
  nest += "7" + std::string(5000, ')');  // 7: the last number must not be the gold
  std::string braces = std::string(5000, '{') + "7" + std::string(5000, '}');
  std::string fracs;
  for (int i = 0; i < 5000; ++i) fracs += "\\frac{7}{";
  fracs += "7" + std::string(5000, '}');
  std::string digits(100000, '7');
  std::string megabyte;
  while (megabyte.size() < (1u << 20)) megabyte += "so $x = 3$ and 1,234.5 \\boxed{ the answer is ";
  std::string dollars(1u << 20, '$');
  std::string brackets;
  while (brackets.size() < (1u << 20)) brackets += "\\[ 7 + ";
  std::string anchors;
  while (anchors.size() < (1u << 20)) anchors += "answer: 答案是 Ответ: ";
  std::string mods;  // each "(" opens a congruence whose ")" is found by a scan
  for (int i = 0; i < 1300; ++i) mods += "(\\bmod ";
  mods += "7" + std::string(1300, ')');
  const std::string inputs[] = {tower, nest, braces, fracs, digits, megabyte, dollars, brackets,
                                anchors, "\\boxed{" + digits + "}", "\\boxed{" + tower + "}",
                                "\\boxed{" + nest + "}", "9^{9^{9^{9^{9^{9}}}}}", "10^{10^{100}}!",
                                mods, "\\boxed{" + mods + "}", "9^{9^{9^{9}}} \\bmod 7"};
  for (const auto& in : inputs) {
    for (const char* gold : {"1", "x + 1", "(1, 2)"}) {
      auto t0 = std::chrono::steady_clock::now();
      MathVerdict v = check(in, gold);
      double ms = ms_since(t0);
      EXPECT_LT(ms, 1000.0) << in.substr(0, 40) << " took " << ms << " ms";
      EXPECT_NE(v, MathVerdict::kEqual) << in.substr(0, 40);
      t0 = std::chrono::steady_clock::now();
      check("\\boxed{1}", in);  // the hostile text as the gold
      EXPECT_LT(ms_since(t0), 1000.0) << "gold " << in.substr(0, 40);
    }
  }
}

// Random completions of answer-like pieces through the whole check: never throws, stays
// bounded, and random pairs are almost never equal.
TEST(MathBounds, FuzzedCompletions) {
  const char* pieces[] = {"1", "23", "0.5", "x", "i", "\\pi", "+", "-", "/", "^", "(", ")", "[",
                          "]", "\\{", "\\}", "{", "}", ",", "=", "<", "!", "%", ":", "\\frac",
                          "\\sqrt", "\\cup", "\\pm", " ", "&", "\\\\", "\\boxed{", "#### ",
                          "$", "$$", "\\[", "\\]", "answer is ", "Answer: ", "答案是", "Ответ:",
                          "</think>", "<answer>", "</answer>", "\n", ".", "。", "(B)", "C.", "1,000",
                          "1000,5", "€", "分钟", "^\\circ", "\\\\sqrt", "4210_{7}", " or "};
  Rng rng(3);
  int equal = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) {
    std::string a, b;
    for (uint64_t k = 0, n = 1 + rng.below(16); k < n; ++k) a += pieces[rng.below(std::size(pieces))];
    for (uint64_t k = 0, n = 1 + rng.below(6); k < n; ++k) b += pieces[rng.below(std::size(pieces))];
    ExtractOptions e;
    e.think = static_cast<ThinkMode>(rng.below(3));
    MathVerdict v = MathVerdict::kUnparsable;
    EXPECT_NO_THROW(v = check(a, b, {}, e)) << a << " | " << b;
    equal += v == MathVerdict::kEqual;
  }
  EXPECT_LT(ms_since(t0), 10000.0);
  EXPECT_LT(equal, 200);
}

}  // namespace
}  // namespace aha::rewards
