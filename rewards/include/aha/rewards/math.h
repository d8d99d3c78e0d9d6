// Rule-based math checking: answer extraction from completions and gold answers, and
// equivalence of two answers (numbers, fractions, LaTeX, tuples, intervals, sets, matrices,
// equations, symbolic expressions). Every check is bounded in time and work; inputs that are
// too large, too deep or too slow become kUnparsable rather than hanging. Thread-safe: all
// functions are pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aha::rewards {

// Where an extracted answer came from, in the order extraction tries them.
enum class AnswerSource {
  kNone,
  kAnswerTag,   // <answer>..</answer>
  kBoxed,       // the last \boxed{..} / \fbox{..}
  kGsm8k,       // "#### .."
  kAnswerIs,    // "the final answer is ..", "Answer: ..", "答案是 ..", "la réponse est .." ...
  kWhole,       // the whole text is itself an answer ("x = 1/3", "$\frac12$")
  kLatex,       // the last $..$ / $$..$$ / \[..\] / \(..\) (joined with "and"/"or"/"," lists)
  kLastNumber,  // the last number of the text
  kChoice,      // a multiple-choice letter (only when the gold is one)
};

// What to do with a reasoning section closed by </think>.
enum class ThinkMode {
  kIgnore,   // look at the whole completion
  kAfter,    // when </think> is present, look only after the last one (TRL's reasoning reward)
  kRequire,  // look only after the last </think>; without one there is no answer
};

// Extraction targets; each is tried in the AnswerSource order, the first that yields a
// parsable answer wins.
struct ExtractOptions {
  bool answer_tag = true;
  bool boxed = true;
  bool gsm8k = true;
  bool answer_is = true;
  bool whole = true;
  bool latex = true;
  bool last_number = true;
  bool choice = true;
  ThinkMode think = ThinkMode::kAfter;
};

struct Extracted {
  std::string text;  // empty when source == kNone
  AnswerSource source = AnswerSource::kNone;
};

// The candidate answers of a completion, best first (at most a few per target). When
// `gold_is_choice`, multiple-choice letters are looked for right after the anchored targets.
std::vector<Extracted> extract_candidates(std::string_view completion,
                                          const ExtractOptions& options, bool gold_is_choice);

// The first candidate of extract_candidates (no multiple-choice preference).
Extracted extract_answer(std::string_view completion, const ExtractOptions& options = {});

// A gold answer: GSM8K ("... #### 42"), a worked solution (its \boxed{} or its final answer),
// a LaTeX answer ("$\frac12$") or plain ("42").
std::string extract_gold(std::string_view answer);

// The letter of a multiple-choice (gold) answer: "B", "(B)", "\text{(B)}", "B.", "(B) 5".
std::optional<char> choice_of(std::string_view answer);
bool is_choice_letter(std::string_view answer);

// The content of the last \boxed{...} or \fbox{...} in text, nullopt when none closes.
std::optional<std::string> last_boxed(std::string_view text);

const char* answer_source_name(AnswerSource source);
const char* think_mode_name(ThinkMode mode);
std::optional<ThinkMode> parse_think_mode(std::string_view name);
std::optional<AnswerSource> parse_answer_source(std::string_view name);

enum class MathVerdict { kEqual, kNotEqual, kUnparsable };

const char* verdict_name(MathVerdict verdict);

struct MathOptions {
  int precision = 6;            // decimals kept when a decimal literal meets another value
  double rel_tol = 1e-6;        // relative tolerance for other inexact comparisons
  double abs_tol = 1e-12;       // absolute tolerance near zero
  double time_limit_ms = 100;   // per check; past it the verdict is kUnparsable
  int max_chars = 4000;         // longer answers are kUnparsable
  int n_points = 6;             // random evaluation points for expressions with variables
  bool percent_equiv = true;    // "50%" also matches "50" and "0.5"
  bool strict = true;           // variable names matter: f(x) = x^2 is not f(y) = y^2
  // A gold interval "(2, \infty)" accepts the inequality "x > 2" (a gold inequality always
  // accepts its interval). Off by default, as Math-Verify's allow_set_relation_comp.
  bool allow_set_relation = false;
  // An equation of degree <= 2 in one variable equals the list of its real roots, either way
  // round: "x^2 = 4" equals "x = \pm 2", "x = 2, x = -2", "\{-2, 2\}".
  bool solve_equations = true;
  // How a bare gold list ("10, 4, -2") meets a list: kAny compares it as a set (Math-Verify),
  // kAsWritten in order (hendrycks MATH), kAuto in order only when the gold lists three or more
  // real numbers neither ascending nor descending, the sign of values asked for in turn ("find
  // a, b, c") rather than of a solution set, which is written sorted.
  enum class ListOrder { kAuto, kAny, kAsWritten };
  ListOrder list_order = ListOrder::kAuto;
};

// Whether a predicted answer equals a gold answer. Both are answer strings (already
// extracted). kUnparsable: one side could not be understood within the bounds.
MathVerdict math_equal(std::string_view predicted, std::string_view gold,
                       const MathOptions& options = {});

// The whole check of one completion against a raw gold answer: extract the gold, then try the
// completion's candidates in order until one is understood.
struct MathCheck {
  MathVerdict verdict = MathVerdict::kUnparsable;
  std::string gold;     // the extracted gold answer
  Extracted extracted;  // the candidate that decided (or the first one, when none did)
};
MathCheck check_math(std::string_view completion, std::string_view gold_raw,
                     const MathOptions& options, const ExtractOptions& extract);

// Normalised LaTeX as the checker sees it (for details and debugging).
std::string normalize_answer(std::string_view answer);

}  // namespace aha::rewards
