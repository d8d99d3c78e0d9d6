// The countdown generator: numbers combined at random into a reachable target.
#include <algorithm>
#include <unordered_set>

#include "gen_budget.h"
#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/datasets/prompt_template.h"
#include "aha/datasets/synthetic.h"

namespace aha::datasets {

namespace {

struct Term {
  int64_t value;
  std::string expr;  // parenthesised unless a bare number
  bool bare;
};

// Combines the numbers pairwise until one is left; steps get "a op b = r" per combination.
// Returns false when a draw hits a dead end (a division that is not exact, a negative).
bool build(Rng& rng, std::vector<Term> pool, std::vector<std::string>& steps, Term& out) {
  while (pool.size() > 1) {
    size_t i = rng.below(pool.size());
    size_t j = rng.below(pool.size() - 1);
    if (j >= i) ++j;
    Term a = pool[i], b = pool[j];
    if (a.value < b.value) std::swap(a, b);  // keeps subtraction non-negative
    const char ops[] = {'+', '-', '*', '/'};
    char op = ops[rng.below(4)];
    int64_t r = 0;
    switch (op) {
      case '+': r = a.value + b.value; break;
      case '-': r = a.value - b.value; break;
      case '*': r = a.value * b.value; break;
      default:
        if (b.value == 0 || a.value % b.value != 0) return false;
        r = a.value / b.value;
    }
    if (r <= 0 || r > 10000) return false;
    steps.push_back(std::to_string(a.value) + " " + op + " " + std::to_string(b.value) + " = " + std::to_string(r));
    Term t{r, "(" + a.expr + " " + op + " " + b.expr + ")", false};
    pool.erase(pool.begin() + std::max(i, j));
    pool.erase(pool.begin() + std::min(i, j));
    pool.push_back(std::move(t));
  }
  out = pool[0];
  if (!out.bare && out.expr.size() > 2) out.expr = out.expr.substr(1, out.expr.size() - 2);
  return true;
}

std::string list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

std::vector<Example> countdown_problems(int64_t n, uint64_t seed, const CountdownTask& t,
                                        bool with_text) {
  if (t.min_numbers < 2 || t.max_numbers < t.min_numbers || t.max_numbers > 6) {
    fail("countdown numbers must satisfy 2 <= min <= max <= 6");
  }
  if (t.max_number < 2 || t.max_number > 1000) fail("countdown max_number must be in [2, 1000]");
  if (t.split != "train" && t.split != "eval" && t.split != "all") fail("split must be train, eval or all");
  PromptTemplate templ(t.templ.empty() ? kR1ZeroTemplate : t.templ);
  Rng rng(seed, 5678);
  std::unordered_set<std::string> seen;
  std::vector<Example> out;
  for (GenBudget budget(n, 200); budget.more(static_cast<int64_t>(out.size()));) {
    const int count = t.min_numbers + static_cast<int>(rng.below(t.max_numbers - t.min_numbers + 1));
    std::vector<Term> pool;
    std::vector<int64_t> numbers;
    for (int i = 0; i < count; ++i) {
      int64_t v = 1 + static_cast<int64_t>(rng.below(t.max_number));
      numbers.push_back(v);
      pool.push_back({v, std::to_string(v), true});
    }
    std::vector<std::string> steps;
    Term result;
    if (!build(rng, pool, steps, result)) continue;
    std::string q = "Using the numbers " + list(numbers) + ", create an equation that equals " +
                    std::to_string(result.value) + " using + - * / and each number exactly once";
    if (t.split != "all" && (std::hash<std::string>{}(q) % 10 == 0) != (t.split == "eval")) continue;
    if (!with_text && !seen.insert(q).second) continue;
    Example e;
    e.id = "cd-" + std::to_string(out.size());
    e.row = Json{{"question", q}, {"prompt", q}, {"numbers", numbers}, {"target", result.value},
                 {"answer", result.expr}};
    if (with_text) {
      std::string answer = result.expr;
      if (rng.uniform() < t.p_wrong_answer && !steps.empty()) {
        // A miscomputed step, and an answer with one operator swapped: wrong in a way the
        // equations and countdown rewards both see.
        std::string& s = steps[rng.below(steps.size())];
        const size_t eq = s.rfind("= ");
        s = s.substr(0, eq + 2) + std::to_string(std::stoll(s.substr(eq + 2)) + 1 + int64_t(rng.below(3)));
        const size_t op = answer.find_last_of("+-*/");
        if (op != std::string::npos) answer[op] = answer[op] == '+' ? '*' : '+';
      }
      std::string think;
      for (const auto& s : steps) think += s + " , ";
      std::string completion = "<think> " + think + "so " + answer + " = " + std::to_string(result.value) +
                               " </think> <answer> " + answer + " </answer>";
      if (rng.uniform() < t.p_no_format) completion = "the equation is " + answer + " .";
      e.row["text"] = templ.render(e.row) + " " + completion;
      e.row["template"] = t.templ.empty() ? kR1ZeroTemplate : t.templ;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace aha::datasets
