// Private to the math checker: text helpers of answer extraction (anchors in several
// languages, LaTeX spans, numbers, choice letters, the cleanup of an extracted span).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace aha::rewards::detail {

std::string_view trim(std::string_view s);

// The first and last '=' outside braces and parentheses that are not part of <=, >=, !=;
// npos when none.
std::pair<size_t, size_t> top_level_eqs(std::string_view s);

// The content of a balanced {...} starting at text[open] == '{'; nullopt when unbalanced.
std::optional<std::string_view> braced(std::string_view text, size_t open);

// The text after the rightmost answer anchor ("final answer is", "Answer:", "答案是",
// "la réponse est", "die Antwort ist", "la respuesta es", "Ответ:", "答えは" ...), up to the end
// of its line or sentence; nullopt without an anchor.
std::optional<std::string> after_anchor(std::string_view text);

// In an answer span that is a sentence ("the largest $n$ is 34"), what follows its last
// copula ("is", "are", "equals", "est", "ist", ...); nullopt when there is none or no prose
// before it.
std::optional<std::string> after_copula(std::string_view span);

// The last LaTeX math span ($..$, $$..$$, \[..\], \(..\)), joined with the spans before it
// when only ",", "and", "or" separate them ("$1$ and $2$" -> "1, 2").
std::optional<std::string> last_latex(std::string_view text);

// The first / last number of the text: digits with decimal points or commas, thousands
// separators, a sign, a "/" fraction and a trailing percent.
std::optional<std::string> first_number(std::string_view text);
// Whether text holds no LaTeX span, or one span that is the whole text.
bool one_span_or_none(std::string_view text);
std::optional<std::string> last_number(std::string_view text);
// The index past the last digit of last_number(text); 0 when there is none.
size_t last_number_end(std::string_view text);
// The index past the last LaTeX span of text; 0 when there is none.
size_t last_span_close(std::string_view text);
// Whether a LaTeX answer's value (its last side) holds a variable: "d = \frac{90}{n}".
bool symbolic(std::string_view latex);

// A standalone choice letter A-E: the first one (in an answer span) or the last one.
std::optional<std::string> choice_letter(std::string_view text, bool last);
// The choice letter that starts the last line starting with one ("B. because ...").
std::optional<std::string> choice_at_line_start(std::string_view text);

// An extracted span made into an answer: "$..$" unwrapped, a leading "Answer:" label
// dropped, a prose left side of "=" dropped ("area = 72000/18 = 4000" -> "4000"), trailing
// sentence punctuation dropped.
std::string clean_answer(std::string_view s);

// Whether normalised text holds prose: a word of 3+ letters that is not a math word, or a
// character outside ASCII.
bool has_prose(std::string_view normalized);

}  // namespace aha::rewards::detail
