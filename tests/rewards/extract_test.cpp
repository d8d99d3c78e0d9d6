// Answer extraction from completions and gold answers.
#include <gtest/gtest.h>

#include "aha/rewards/math.h"

namespace aha::rewards {
namespace {

struct ExtractCase {
  const char* text;
  const char* want;
  AnswerSource source;
};

const ExtractCase kExtract[] = {
    {"so \\boxed{42}.", "42", AnswerSource::kBoxed},
    {"first \\boxed{1} then \\boxed{2}", "2", AnswerSource::kBoxed},
    {"\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}", AnswerSource::kBoxed},
    {"\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", AnswerSource::kBoxed},
    {"\\fbox{7}", "7", AnswerSource::kBoxed},
    {"$\\boxed 5$", "5", AnswerSource::kBoxed},
    {"<think>\\boxed{3}</think><answer>4</answer>", "4", AnswerSource::kAnswerTag},
    {"<answer>The result is \\boxed{9}</answer>", "9", AnswerSource::kAnswerTag},
    {"<answer> 12 </answer>", "12", AnswerSource::kAnswerTag},
    {"Thus the answer is 17.", "17", AnswerSource::kAnswerIs},
    {"The answer is $3.5$.", "3.5", AnswerSource::kAnswerIs},
    {"The final answer is 2.5\nDone", "2.5", AnswerSource::kAnswerIs},
    {"Answer: 8", "8", AnswerSource::kAnswerIs},
    {"**Answer:** 9", "9", AnswerSource::kAnswerIs},
    {"The final answer is: $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}",
     AnswerSource::kAnswerIs},
    {"48/2 = 24\n#### 72", "72", AnswerSource::kGsm8k},
    {"#### 1,000", "1,000", AnswerSource::kGsm8k},
    {"no answer here", "", AnswerSource::kNone},
    {"no answer here either", "", AnswerSource::kNone},
    {"\\boxed{unclosed", "\\boxed{unclosed", AnswerSource::kWhole},
    {"\\boxed{Answer: 9}", "9", AnswerSource::kBoxed},
    {"\\boxed{x = 5+5+1 = 11}", "x = 5+5+1 = 11", AnswerSource::kBoxed},
    {"\\boxed{\\text{area} = 72 / 18 = 4}", "4", AnswerSource::kBoxed},
    {"so the answer is 79 g.", "79 g", AnswerSource::kAnswerIs},
    {"答案是 300 分钟", "300 分钟", AnswerSource::kAnswerIs},
    {"Die Antwort ist 24.", "24", AnswerSource::kAnswerIs},
    {"Ответ: 36", "36", AnswerSource::kAnswerIs},
    {"x = 1/3", "x = 1/3", AnswerSource::kWhole},
    {"$\\frac{1}{2}$", "\\frac{1}{2}", AnswerSource::kWhole},
    {"We get $x = 2$ and then $y = 3$ here", "y = 3", AnswerSource::kLatex},
    {"The roots are $1$ and $2$ so", "1, 2", AnswerSource::kLatex},
    {"donc il reste 79 g de cire.", "79", AnswerSource::kLastNumber},
    {"<think>\\boxed{3}</think> it is 4", "4", AnswerSource::kLastNumber},
};

TEST(Extract, Completions) {
  for (const auto& c : kExtract) {
    Extracted e = extract_answer(c.text);
    EXPECT_EQ(e.text, c.want) << c.text;
    EXPECT_EQ(e.source, c.source) << c.text;
  }
}

TEST(Extract, LastNumberCanBeTurnedOff) {
  EXPECT_EQ(extract_answer("I get 3 then 5 apples").text, "5");
  ExtractOptions o;
  o.last_number = false;
  EXPECT_EQ(extract_answer("I get 3 then 5 apples", o).source, AnswerSource::kNone);
  EXPECT_EQ(extract_answer("costs -12.50 dollars").text, "-12.50");
  EXPECT_EQ(extract_answer("total 1,234.").text, "1,234");
  EXPECT_EQ(extract_answer("it is 45% of them").text, "45%");
}

// Inline math (`$..$`, `\(..\)`) stays on one line, display math (`$$..$$`, `\[..\]`) may not:
// Math-Verify's rule, which keeps `$5 ... $10` across lines from pairing up as math.
TEST(Extract, InlineMathStaysOnOneLine) {
  ExtractOptions latex_only;
  latex_only.boxed = latex_only.answer_is = latex_only.whole = latex_only.choice = false;
  latex_only.answer_tag = latex_only.gsm8k = false;
  latex_only.last_number = false;
  EXPECT_EQ(extract_answer("Answer \\( 9 \\)", latex_only).text, "9");
  EXPECT_EQ(extract_answer("Answer $ 9 $", latex_only).text, "9");
  EXPECT_EQ(extract_answer("Answer \\[ \n 9 \n \\]", latex_only).text, "9");
  EXPECT_EQ(extract_answer("Answer $$ \n 9 \n $$", latex_only).text, "9");
  EXPECT_EQ(extract_answer("Answer \\( \n 9 \n \\)", latex_only).source, AnswerSource::kNone);
  EXPECT_EQ(extract_answer("Answer $ \n 9 \n $", latex_only).source, AnswerSource::kNone);
  // an unclosed opener does not hide a later span on the next line
  EXPECT_EQ(extract_answer("a \\( b \\( c\nso \\(7\\)", latex_only).text, "7");
  // with every target the number is still found, as Math-Verify's default targets find it
  EXPECT_EQ(extract_answer("Answer \\( \n 9 \n \\)").text, "9");
}

TEST(Extract, AnswerTagIsTheOnlyCandidate) {
  auto all = extract_candidates("so 8 <answer> > 8 </answer>", ExtractOptions{}, false);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].source, AnswerSource::kAnswerTag);
  EXPECT_NE(check_math("so 8 <answer> > 8 </answer>", "8", {}, {}).verdict, MathVerdict::kEqual);
  ExtractOptions no_tag;
  no_tag.answer_tag = false;
  EXPECT_EQ(check_math("so 8 <answer> > 8 </answer>", "8", {}, no_tag).verdict,
            MathVerdict::kEqual);
}

TEST(Extract, CandidatesInOrder) {
  auto all = extract_candidates("The answer is (B) since 3 > 2", ExtractOptions{}, true);
  ASSERT_GE(all.size(), 2u);
  EXPECT_EQ(all[0].text, "B");
  EXPECT_EQ(all[0].source, AnswerSource::kChoice);
  EXPECT_TRUE(is_choice_letter("\\text{(C)}"));
  EXPECT_FALSE(is_choice_letter("x"));
  EXPECT_FALSE(is_choice_letter("12"));
}

// A box after "the answer is" that does not parse is not read for its leading number: the
// number is a piece of the boxed answer (10 \bmod 7 is 3, not 10), so the box yields nothing.
TEST(Extract, AnUnreadBoxIsNotReadForItsFirstNumber) {
  const MathOptions o;
  const ExtractOptions e;
  EXPECT_NE(check_math("The final answer is $\\boxed{10 \\bmod 7}$.", "10", o, e).verdict,
            MathVerdict::kEqual);
  EXPECT_NE(check_math("The final answer is $\\boxed{3 \\foo 5}$.", "3", o, e).verdict,
            MathVerdict::kEqual);
  // a box that parses still decides, and with no box the first number after the anchor counts
  EXPECT_EQ(check_math("The final answer is $\\boxed{3}$ apples.", "3", o, e).verdict,
            MathVerdict::kEqual);
  EXPECT_EQ(check_math("The final answer is 3 \\foo 5.", "3", o, e).verdict, MathVerdict::kEqual);
}

TEST(Extract, GoldAnswers) {
  EXPECT_EQ(extract_gold("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72"), "72");
  EXPECT_EQ(extract_gold("So the area is $\\boxed{12\\pi}$."), "12\\pi");
  EXPECT_EQ(extract_gold("  3/4 "), "3/4");
  EXPECT_EQ(extract_gold("$\\frac{1}{2}$"), "\\frac{1}{2}");
  EXPECT_EQ(extract_gold("The answer is 5 apples."), "5 apples");
  EXPECT_EQ(extract_gold("Monday"), "Monday");
}

TEST(Extract, EndToEndWithEquivalence) {
  auto e = extract_answer("We find $x = \\boxed{\\dfrac{3}{6}}$.");
  EXPECT_EQ(math_equal(e.text, extract_gold("#### 0.5")), MathVerdict::kEqual);
  e = extract_answer("The answer is 0.6.");
  EXPECT_EQ(math_equal(e.text, extract_gold("#### 0.5")), MathVerdict::kNotEqual);
}

}  // namespace
}  // namespace aha::rewards
