// Digit-by-digit addition problems and their (sometimes flawed) worked solutions.
#include "gen_budget.h"
#include "aha/datasets/synthetic.h"

#include <functional>
#include <unordered_set>

#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/datasets/prompt_template.h"

namespace aha::datasets {

namespace {

bool in_eval_split(const std::string& q) { return std::hash<std::string>{}(q) % 10 == 0; }

int64_t random_number(Rng& rng, int digits) {
  int64_t lo = 1;
  for (int i = 1; i < digits; ++i) lo *= 10;
  if (digits == 1) return static_cast<int64_t>(rng.below(10));
  return lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(9 * lo)));
}

}  // namespace

std::string addition_solution(int64_t a, int64_t b, bool sloppy) {
  std::string steps;
  int64_t x = a, y = b, carry = 0, place = 1, result = 0;
  while (x > 0 || y > 0 || carry > 0) {
    int64_t da = x % 10, db = y % 10;
    int64_t s = da + db + carry;
    steps += std::to_string(da) + " + " + std::to_string(db);
    if (carry) steps += " + " + std::to_string(carry);
    steps += " = " + std::to_string(s) + " , ";
    result += (s % 10) * place;
    carry = sloppy ? 0 : s / 10;
    x /= 10;
    y /= 10;
    place *= 10;
    if (sloppy && x == 0 && y == 0) break;
  }
  if (a == 0 && b == 0) steps = "0 + 0 = 0 , ";
  return "<think> " + steps + "so " + std::to_string(a) + " + " + std::to_string(b) + " = " +
         std::to_string(result) + " </think> <answer> " + std::to_string(result) + " </answer>";
}

std::vector<Example> addition_problems(int64_t n, uint64_t seed, const AdditionTask& t,
                                       bool with_text) {
  if (t.min_digits < 1 || t.max_digits < t.min_digits || t.max_digits > 6) {
    fail("addition digits must satisfy 1 <= min <= max <= 6");
  }
  if (t.split != "train" && t.split != "eval" && t.split != "all") {
    fail("split must be train, eval or all");
  }
  PromptTemplate templ(t.templ.empty() ? kR1ZeroTemplate : t.templ);
  Rng rng(seed, 1234);
  std::unordered_set<std::string> seen;
  std::vector<Example> out;
  for (GenBudget budget(n, 100); budget.more(static_cast<int64_t>(out.size()));) {
    int64_t a = random_number(rng, t.min_digits + static_cast<int>(rng.below(t.max_digits - t.min_digits + 1)));
    int64_t b = random_number(rng, t.min_digits + static_cast<int>(rng.below(t.max_digits - t.min_digits + 1)));
    std::string q = "What is " + std::to_string(a) + " + " + std::to_string(b) + "?";
    if (t.split != "all" && in_eval_split(q) != (t.split == "eval")) continue;
    if (with_text) {
      // Documents may repeat a question (different solutions); problems may not.
    } else if (!seen.insert(q).second) {
      continue;
    }
    Example e;
    e.id = "add-" + std::to_string(a) + "-" + std::to_string(b);
    e.row = Json{{"question", q}, {"answer", std::to_string(a + b)}, {"prompt", q}};
    if (with_text) {
      std::string completion;
      const bool sloppy = rng.uniform() < t.p_sloppy;
      completion = addition_solution(a, b, sloppy);
      if (rng.uniform() < t.p_wrong_answer) {
        int64_t wrong = a + b + (rng.below(2) ? 1 : -1) * (rng.below(2) ? 1 : 10);
        if (wrong < 0) wrong = a + b + 1;
        size_t at = completion.rfind("<answer> ");
        completion = completion.substr(0, at) + "<answer> " + std::to_string(wrong) + " </answer>";
      }
      if (rng.uniform() < t.p_no_format) {
        size_t at = completion.rfind("<answer> ") + 9;
        completion = "the answer is " + completion.substr(at, completion.find(' ', at) - at) + " .";
      }
      e.row["text"] = templ.render(e.row) + " " + completion;
      // Pretraining records it with the base model, so GRPO can warn about another template.
      e.row["template"] = t.templ.empty() ? kR1ZeroTemplate : t.templ;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<Example> linear_equations(int64_t n, uint64_t seed, int max_coef,
                                      const std::string& split) {
  if (max_coef < 2) fail("linear equations need max_coef >= 2");
  if (split != "train" && split != "eval" && split != "all") fail("split must be train, eval or all");
  Rng rng(seed, 4321);
  std::unordered_set<std::string> seen;
  std::vector<Example> out;
  auto coef = [&](int lo) {
    int64_t v = lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(max_coef - lo + 1)));
    return rng.below(2) ? v : -v;
  };
  for (GenBudget budget(n, 100); budget.more(static_cast<int64_t>(out.size()));) {
    int64_t a = coef(2), x = coef(0), b = coef(1);
    int64_t c = a * x + b;
    std::string lhs = std::to_string(a) + "x " + (b < 0 ? "- " : "+ ") + std::to_string(b < 0 ? -b : b);
    std::string q = "Solve for x: " + lhs + " = " + std::to_string(c) + ".";
    if (split != "all" && in_eval_split(q) != (split == "eval")) continue;
    if (!seen.insert(q).second) continue;
    Example e;
    e.id = "lin-" + std::to_string(out.size());
    e.row = Json{{"question", q}, {"answer", std::to_string(x)}, {"prompt", q}};
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace aha::datasets
