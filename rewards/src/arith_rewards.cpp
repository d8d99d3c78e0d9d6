// Rewards over exact integer arithmetic: "equations" checks every `expr = n` a completion writes
// (a rule-based process reward: one step per equation, for DeepSeekMath process supervision),
// and "countdown" checks an answer expression that must reach a target with the given numbers.
#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <string_view>

#include "aha/rewards/arith.h"
#include "builtin.h"

namespace aha::rewards {

namespace {

using I128 = __int128;
constexpr I128 kLimit = I128{1} << 100;  // beyond this an expression is not "arithmetic"

std::optional<Rational> make(I128 n, I128 d) {
  if (d == 0) return std::nullopt;
  if (d < 0) n = -n, d = -d;
  I128 a = n < 0 ? -n : n, b = d;
  while (b != 0) {
    I128 t = a % b;
    a = b;
    b = t;
  }
  if (a > 1) n /= a, d /= a;
  if (n > kLimit || n < -kLimit || d > kLimit) return std::nullopt;
  return Rational{n, d};
}

// Recursive descent over + - * / × ÷ and parentheses; integers only.
class Parser {
 public:
  Parser(std::string_view s, std::vector<int64_t>* numbers) : s_(s), numbers_(numbers) {}

  std::optional<Rational> parse() {
    auto v = sum(0);
    skip();
    if (!v || i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  // The next operator, consuming it; 0 when none of `ops`.
  char op(std::string_view ops) {
    skip();
    if (i_ >= s_.size()) return 0;
    char c = s_[i_];
    if (s_.substr(i_, 2) == "\xC3\x97") c = '*';  // ×
    if (s_.substr(i_, 2) == "\xC3\xB7") c = '/';  // ÷
    if (ops.find(c) == std::string_view::npos) return 0;
    i_ += (c == s_[i_]) ? 1 : 2;
    return c;
  }
  std::optional<Rational> sum(int depth) {
    auto v = product(depth);
    while (v) {
      char c = op("+-");
      if (c == 0) break;
      auto r = product(depth);
      if (!r) return std::nullopt;
      v = c == '+' ? make(v->num * r->den + r->num * v->den, v->den * r->den)
                   : make(v->num * r->den - r->num * v->den, v->den * r->den);
    }
    return v;
  }
  std::optional<Rational> product(int depth) {
    auto v = atom(depth);
    while (v) {
      char c = op("*/");
      if (c == 0) break;
      auto r = atom(depth);
      if (!r) return std::nullopt;
      v = c == '*' ? make(v->num * r->num, v->den * r->den) : make(v->num * r->den, v->den * r->num);
    }
    return v;
  }
  std::optional<Rational> atom(int depth) {
    skip();
    if (depth > 64 || i_ >= s_.size()) return std::nullopt;
    if (s_[i_] == '(') {
      ++i_;
      auto v = sum(depth + 1);
      skip();
      if (!v || i_ >= s_.size() || s_[i_] != ')') return std::nullopt;
      ++i_;
      return v;
    }
    if (s_[i_] == '-') {  // unary minus
      ++i_;
      auto v = atom(depth + 1);
      return v ? make(-v->num, v->den) : std::nullopt;
    }
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9' && i_ - start < 19) ++i_;
    if (i_ == start || (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')) return std::nullopt;
    const int64_t n = std::strtoll(std::string(s_.substr(start, i_ - start)).c_str(), nullptr, 10);
    if (numbers_ != nullptr) numbers_->push_back(n);
    return make(n, 1);
  }

  std::string_view s_;
  std::vector<int64_t>* numbers_;
  size_t i_ = 0;
};

bool expr_char(unsigned char c) {
  return (c >= '0' && c <= '9') || c == ' ' || c == '+' || c == '-' || c == '*' || c == '/' ||
         c == '(' || c == ')' || c == 0xC3 || c == 0x97 || c == 0xB7;
}

}  // namespace

std::optional<Rational> eval_arith(std::string_view expr, std::vector<int64_t>* numbers) {
  if (expr.size() > 512) return std::nullopt;
  return Parser(expr, numbers).parse();
}

std::vector<Equation> find_equations(std::string_view text) {
  std::vector<Equation> out;
  for (size_t eq = text.find('='); eq != std::string_view::npos; eq = text.find('=', eq + 1)) {
    size_t a = eq;
    while (a > 0 && expr_char(static_cast<unsigned char>(text[a - 1])) && eq - a < 256) --a;
    std::string_view lhs = text.substr(a, eq - a);
    // Leading/trailing spaces and a stray closing parenthesis of prose are not the expression.
    while (!lhs.empty() && (lhs.front() == ' ' || lhs.front() == ')')) lhs.remove_prefix(1);
    while (!lhs.empty() && lhs.back() == ' ') lhs.remove_suffix(1);
    if (lhs.find_first_of("+-*/\xC3") == std::string_view::npos || lhs.find_first_of("0123456789") == std::string_view::npos) {
      continue;
    }
    size_t b = eq + 1;
    while (b < text.size() && text[b] == ' ') ++b;
    size_t start = b;
    if (b < text.size() && text[b] == '-') ++b;
    size_t digits = b;
    while (b < text.size() && text[b] >= '0' && text[b] <= '9' && b - digits < 19) ++b;
    if (b == digits) continue;
    Equation e;
    e.lhs = std::string(lhs);
    e.rhs = std::string(text.substr(start, b - start));
    e.end = b;
    auto v = eval_arith(e.lhs);
    e.valid = v.has_value();
    e.correct = v && v->den == 1 && static_cast<int64_t>(v->num) == std::strtoll(e.rhs.c_str(), nullptr, 10);
    out.push_back(std::move(e));
  }
  return out;
}

namespace detail {
namespace {

// Every `expr = n` in the completion is a step: reward 1 when it holds, else 0. The score is
// the share that hold; details.steps carries [{"end": byte offset, "reward": r}] for the
// trainer's process supervision (grpo.advantage = "process").
class EquationsReward : public RewardFunction {
 public:
  explicit EquationsReward(const Json& params) {
    StrictReader r(params, "equations");
    think_only_ = r.get<bool>("think_only", true);
    r.finish();
  }
  RewardResult score(const Sample& s) const override {
    std::string_view text = s.completion;
    if (think_only_) {
      size_t close = text.find("</think>");
      if (close != std::string_view::npos) text = text.substr(0, close);
    }
    auto eqs = find_equations(text);
    if (eqs.empty()) return unjudged("no equations");
    RewardResult r;
    Json steps = Json::array();
    int good = 0;
    for (const Equation& e : eqs) {
      good += e.correct;
      steps.push_back({{"end", e.end}, {"reward", e.correct ? 1.0 : 0.0}});
    }
    r.score = double(good) / double(eqs.size());
    r.details["steps"] = std::move(steps);
    r.details["correct"] = good;
    r.details["total"] = static_cast<int64_t>(eqs.size());
    return r;
  }

 private:
  bool think_only_ = true;
};

// Countdown (TinyZero): the row holds "numbers" and "target"; the answer (the last
// <answer>...</answer>, or the completion's last line) is an expression, optionally followed
// by "= target", that must use the given numbers (each at most once; all of them when use_all)
// and equal the target exactly.
class CountdownReward : public RewardFunction {
 public:
  explicit CountdownReward(const Json& params) {
    StrictReader r(params, "countdown");
    use_all_ = r.get<bool>("use_all", true);
    format_score_ = r.get<double>("format_score", 0.0);
    r.finish();
  }
  RewardResult score(const Sample& s) const override {
    if (s.row == nullptr || !s.row->contains("numbers") || !s.row->contains("target")) {
      return bad_row("the row needs 'numbers' and 'target'");
    }
    std::vector<int64_t> given;
    for (const Json& v : (*s.row)["numbers"]) {
      if (!v.is_number_integer()) return bad_row("'numbers' must be integers");
      given.push_back(v.get<int64_t>());
    }
    const Json& tj = (*s.row)["target"];
    if (!tj.is_number_integer()) return bad_row("'target' must be an integer");
    const int64_t target = tj.get<int64_t>();
    std::string expr = answer_text(std::string(s.completion));
    if (size_t eq = expr.find('='); eq != std::string::npos) expr = expr.substr(0, eq);
    RewardResult r;
    r.details["expression"] = expr;
    std::vector<int64_t> used;
    auto v = eval_arith(expr, &used);
    if (!v) {
      r.details["reason"] = "not an arithmetic expression";
      return r;
    }
    std::sort(used.begin(), used.end());
    std::sort(given.begin(), given.end());
    const bool subset = std::includes(given.begin(), given.end(), used.begin(), used.end());
    if (!subset || (use_all_ && used != given)) {
      r.details["reason"] = use_all_ ? "must use each given number exactly once" : "uses numbers not given";
      r.score = format_score_;
      return r;
    }
    r.details["value"] = static_cast<double>(v->num) / static_cast<double>(v->den);
    r.score = v->den == 1 && v->num == target ? 1.0 : format_score_;
    return r;
  }

 private:
  static std::string answer_text(const std::string& c) {
    size_t open = c.rfind("<answer>");
    if (open != std::string::npos) {
      size_t close = c.find("</answer>", open);
      return c.substr(open + 8, close == std::string::npos ? std::string::npos : close - open - 8);
    }
    size_t nl = c.find_last_not_of(" \n");
    std::string t = nl == std::string::npos ? "" : c.substr(0, nl + 1);
    size_t last = t.rfind('\n');
    return last == std::string::npos ? t : t.substr(last + 1);
  }
  bool use_all_ = true;
  double format_score_ = 0.0;
};

}  // namespace

std::unique_ptr<RewardFunction> make_equations_reward(const Json& params) {
  return std::make_unique<EquationsReward>(params);
}
std::unique_ptr<RewardFunction> make_countdown_reward(const Json& params) {
  return std::make_unique<CountdownReward>(params);
}

}  // namespace detail
}  // namespace aha::rewards
