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

// Where an extracted answer came from.
enum class AnswerSource { kNone, kBoxed, kAnswerTag, kAnswerIs, kGsm8k, kLastNumber, kWhole };

struct ExtractOptions {
  bool boxed = true;        // last \boxed{..} / \fbox{..} (nested braces)
  bool answer_tag = true;   // <answer>..</answer> (a \boxed inside wins)
  bool answer_is = true;    // "the answer is ..." (last occurrence)
  bool gsm8k = true;        // "#### ..." (last occurrence)
  bool last_number = false; // opt-in fallback: the last number in the text
};

struct Extracted {
  std::string text;  // empty when source == kNone
  AnswerSource source = AnswerSource::kNone;
};

// The model's final answer in a completion, by the first rule that matches, in the order
// answer tag, boxed, "answer is", "####", last number.
Extracted extract_answer(std::string_view completion, const ExtractOptions& options = {});

// A gold answer: GSM8K ("... #### 42"), MATH (a solution with \boxed{}) or plain ("42").
std::string extract_gold(std::string_view answer);

// The content of the last \boxed{...} or \fbox{...} in text, nullopt when none closes.
std::optional<std::string> last_boxed(std::string_view text);

const char* answer_source_name(AnswerSource source);

enum class MathVerdict { kEqual, kNotEqual, kUnparsable };

const char* verdict_name(MathVerdict verdict);

struct MathOptions {
  double rel_tol = 1e-6;        // relative tolerance for inexact numeric comparison
  double abs_tol = 1e-12;       // absolute tolerance near zero
  double time_limit_ms = 100;   // per check; past it the verdict is kUnparsable
  int max_chars = 4000;         // longer answers are kUnparsable
  int n_points = 6;             // random evaluation points for expressions with variables
  bool percent_equiv = true;    // "50%" also matches "50" and "0.5"
};

// Whether a predicted answer equals a gold answer. Both are answer strings (already
// extracted). kUnparsable: one side could not be understood within the bounds.
MathVerdict math_equal(std::string_view predicted, std::string_view gold,
                       const MathOptions& options = {});

// Normalised LaTeX as the checker sees it (for details and debugging).
std::string normalize_answer(std::string_view answer);

}  // namespace aha::rewards
