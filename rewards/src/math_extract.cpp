// Answer extraction: the candidate answers of a completion in priority order (<answer> tag,
// \boxed, anchors in several languages, GSM8K "####", the whole text, the last LaTeX span, the
// last number, choice letters) and the gold answer of a dataset row.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "aha/rewards/math.h"
#include "math_internal.h"
#include "math_candidates.h"
#include "math_text.h"

namespace aha::rewards {
namespace {

using detail::clean_answer;
using detail::trim;

constexpr size_t kMaxWhole = 600;  // longer texts are never taken whole

std::optional<std::string> from_answer_tag(std::string_view text) {
  size_t close = text.rfind("</answer>");
  if (close == std::string_view::npos) return std::nullopt;
  size_t open = text.rfind("<answer>", close);
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view inner = text.substr(open + 8, close - open - 8);
  if (auto boxed = last_boxed(inner)) return clean_answer(*boxed);
  return clean_answer(inner);
}

std::optional<std::string> from_gsm8k(std::string_view text) {
  size_t at = text.rfind("####");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(at + 4);
  std::string out = clean_answer(rest.substr(0, rest.find('\n')));
  if (out.empty()) return std::nullopt;
  return out;
}

// The text itself when it reads as an answer rather than as prose.
std::optional<std::string> from_whole(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.size() > kMaxWhole) return std::nullopt;
  if (!detail::one_span_or_none(text) || detail::has_prose(detail::normalize(text))) {
    return std::nullopt;
  }
  std::string out = clean_answer(text);
  if (out.empty()) return std::nullopt;
  return out;
}

// The part of a completion that may hold its answer under the <think> mode; nullopt: none.
std::optional<std::string_view> answer_region(std::string_view text, ThinkMode mode) {
  if (mode == ThinkMode::kIgnore) return text;
  size_t close = text.rfind("</think>");
  if (close == std::string_view::npos) {
    if (mode == ThinkMode::kRequire) return std::nullopt;
    return text;
  }
  return text.substr(close + 8);
}

}  // namespace

std::optional<std::string> last_boxed(std::string_view text) {
  size_t at = std::string_view::npos;
  size_t skip = 0;
  for (const char* cmd : {"\\boxed", "\\fbox"}) {
    size_t p = text.rfind(cmd);
    if (p != std::string_view::npos && (at == std::string_view::npos || p > at)) {
      at = p;
      skip = std::strlen(cmd);
    }
  }
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + skip;
  if (i < text.size() && text[i] == '{') {
    auto inner = detail::braced(text, i);
    if (!inner) return std::nullopt;
    return std::string(trim(*inner));
  }
  // "\boxed 5": the next whitespace-delimited token.
  while (i < text.size() && text[i] == ' ') ++i;
  size_t end = i;
  while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) &&
         text[end] != '$') {
    ++end;
  }
  if (end == i) return std::nullopt;
  return clean_answer(text.substr(i, end - i));
}

namespace {

// Whether the text between two boxes joins them into one answer: spacing, punctuation,
// operators and LaTeX wrappers only, or a few words among which a conjunction ("\\quad \\text{and} \\quad",
// "papers and", "for part (a) and"); never digits or an equation.
bool joins_boxes(std::string_view gap) {
  if (gap.size() > 80) return false;
  // "\boxed{..} \) and \( y_2 = \boxed{..}": the next box's label is no part of the gap
  while (!gap.empty() && std::isspace(static_cast<unsigned char>(gap.back()))) gap.remove_suffix(1);
  if (!gap.empty() && gap.back() == '=') {
    gap.remove_suffix(1);
    while (!gap.empty() && gap.back() == ' ') gap.remove_suffix(1);
    while (!gap.empty() && (std::isalnum(static_cast<unsigned char>(gap.back())) ||
                            gap.back() == '_' || gap.back() == '{' || gap.back() == '}')) {
      gap.remove_suffix(1);
    }
  }
  std::string words;
  for (size_t i = 0; i < gap.size(); ++i) {
    char c = gap[i];
    if (c == '\\') {  // \quad, \text{, \( ... : a separator
      size_t j = i + 1;
      while (j < gap.size() && std::isalpha(static_cast<unsigned char>(gap[j]))) ++j;
      i = j == i + 1 ? i + 1 : j - 1;
      words += ' ';
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '=') return false;
    bool sep = std::strchr(" $,;.{}~\n:", c) != nullptr;
    words += sep ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  int n_words = 0;
  bool conjunction = false;
  for (size_t i = 0; i < words.size();) {
    while (i < words.size() && words[i] == ' ') ++i;
    size_t j = i;
    while (j < words.size() && words[j] != ' ') ++j;
    if (j == i) break;
    std::string_view w(words.data() + i, j - i);
    // operators alone are no words: "\boxed{35} ++ \boxed{4}" in one formula is one answer
    n_words += std::any_of(w.begin(), w.end(), [](char c) {
      return std::isalpha(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80;
    });
    for (const char* k : {"and", "or", "et", "ou", "und", "oder", "y", "o", "e", "и", "или",
                          "和", "或", "及", "以及", "と"}) {
      conjunction = conjunction || w == k;
    }
    i = j;
  }
  return n_words == 0 || (conjunction && n_words <= 5);
}

// The last \boxed{} with the boxes just before it that joins_boxes() joins to it
// ("\boxed{1} and \boxed{2}" -> "1, 2"); at most five boxes.
std::optional<std::string> boxed_run(std::string_view text) {
  auto last = last_boxed(text);
  if (!last) return std::nullopt;
  std::string out = clean_answer(*last);
  size_t start = std::min(text.rfind("\\boxed"), text.size());
  for (int k = 0; k < 4 && start != std::string_view::npos && start > 0; ++k) {
    size_t prev = text.rfind("\\boxed{", start - 1);
    if (prev == std::string_view::npos) break;
    auto inner = detail::braced(text, prev + 6);
    if (!inner) break;
    size_t end = prev + 6 + inner->size() + 2;
    if (end > start || !joins_boxes(text.substr(end, start - end))) break;
    out = clean_answer(*inner) + ", " + out;
    start = prev;
  }
  return out;
}

}  // namespace

CandidateStream::CandidateStream(std::string_view completion, const ExtractOptions& options,
                                 bool gold_is_choice)
    : o_(options), choice_(options.choice && gold_is_choice) {
  auto region = answer_region(completion, options.think);
  done_ = !region;
  if (region) text_ = *region;
  anchor_first_ = region && o_.boxed && o_.answer_is && anchor_after_last_box(text_);
}

// Math-Verify ranks a "final answer is" sentence and a \boxed{} alike and takes the later one:
// "\boxed{255} so she has $10,455. The final answer is $10,455$." answers 10,455.
bool CandidateStream::anchor_after_last_box(std::string_view text) {
  size_t box = text.rfind("\\boxed{");
  if (box == std::string_view::npos) return false;
  auto inner = detail::braced(text, box + 6);
  if (!inner) return false;
  std::string_view after = text.substr(box + 6 + inner->size() + 2);
  return after.size() <= kTail && detail::after_anchor(after).has_value();
}

std::optional<Extracted> CandidateStream::next() {
  while (pos_ == queue_.size()) {
    if (done_ || n_ >= kMaxCandidates) return std::nullopt;
    queue_.clear();
    pos_ = 0;
    // the anchor's stage (3) before the box's (1) when the anchor comes last
    static constexpr int kAnchorFirst[] = {0, 3, 1, 2};
    int stage = stage_++;
    run_stage(anchor_first_ && stage < 4 ? kAnchorFirst[stage] : stage);
  }
  ++n_;
  return std::move(queue_[pos_++]);
}

void CandidateStream::add(std::optional<std::string> text, AnswerSource source) {
  if (!text || text->empty()) return;
  for (const auto& s : seen_) {
    if (s == *text) return;
  }
  seen_.push_back(*text);
  queue_.push_back({std::move(*text), source});
}

// The last \boxed{}. A box of prose is read as a completion: "\boxed{B。不是 A}" answers by
// its first letter, a reasoning in the box by its conclusion (its anchor, then its last number).
void CandidateStream::boxed_stage(std::string_view text) {
  auto b = last_boxed(text);
  if (!b) return;
  const bool prose = detail::has_prose(*b);
  auto anchored = prose ? detail::after_anchor(*b) : std::nullopt;
  if (choice_) {
    add(anchored ? detail::choice_letter(*anchored, false)
                 : detail::choice_letter(*b, prose && b->size() > 24),
        AnswerSource::kChoice);
  }
  add(boxed_run(text), AnswerSource::kBoxed);
  if (anchored) box_anchor(*anchored);
  if (o_.latex) add(detail::last_latex(*b), AnswerSource::kBoxed);  // \boxed{is $(1,2)$}
  if (prose && !anchored) add(detail::last_number(*b), AnswerSource::kBoxed);
}

// What follows the last answer anchor ("the answer is ...").
void CandidateStream::anchor_stage(std::string_view tail) {
  auto a = detail::after_anchor(tail);
  if (!a) return;
  if (choice_) add(detail::choice_letter(*a, false), AnswerSource::kChoice);
  const std::optional<std::string> box = o_.boxed ? last_boxed(*a) : std::nullopt;
  add(box, AnswerSource::kAnswerIs);
  if (auto v = detail::after_copula(*a)) {  // "the largest $n$ is 34": the value
    if (o_.latex) add(detail::last_latex(*v), AnswerSource::kAnswerIs);
    add(clean_answer(*v), AnswerSource::kAnswerIs);
  }
  if (o_.latex) add(detail::last_latex(*a), AnswerSource::kAnswerIs);
  add(clean_answer(*a), AnswerSource::kAnswerIs);
  // a box after the anchor is the answer: when it did not parse, its leading number is a piece
  // of it ("\boxed{10 \bmod 7}" is not 10), not an answer of its own
  if (!box) add(detail::first_number(*a), AnswerSource::kAnswerIs);
}

// One extraction target per stage, in priority order.
void CandidateStream::run_stage(int stage) {
  std::string_view text = text_;
  // the prose targets read the end of a long completion only: bounded work, and the answer
  // of a completion is at its end
  std::string_view tail = text.size() > kTail ? text.substr(text.size() - kTail) : text;
  switch (stage) {
    case 0:  // an <answer> tag is the answer: nothing outside it is looked at
      if (!o_.answer_tag) return;
      if (auto a = from_answer_tag(text)) {
        add(std::move(a), AnswerSource::kAnswerTag);
        done_ = true;
      }
      return;
    case 1:
      if (o_.boxed) boxed_stage(text);
      return;
    case 2:
      if (o_.gsm8k) add(from_gsm8k(text), AnswerSource::kGsm8k);
      return;
    case 3:
      if (o_.answer_is) anchor_stage(tail);
      return;
    case 4:  // a choice gold: letters before the whole text ("(B) 5" -> "B")
      if (!choice_) return;
      add(detail::choice_at_line_start(tail), AnswerSource::kChoice);
      add(detail::choice_letter(tail, true), AnswerSource::kChoice);
      return;
    case 5:
      if (o_.whole) add(from_whole(text), AnswerSource::kWhole);
      return;
    case 6: {
      if (!o_.latex) return;
      auto l = detail::last_latex(tail);
      if (!l) return;
      // Math-Verify takes the rightmost of the unanchored targets: a number after the last span
      // when that span is a formula ("$d = \frac{90}{n}$ ... so there are 12 sequences")
      if (o_.last_number && detail::symbolic(*l) &&
          detail::last_number_end(tail) > detail::last_span_close(tail)) {
        add(detail::last_number(tail), AnswerSource::kLastNumber);
      }
      add(clean_answer(*l), AnswerSource::kLatex);
      return;
    }
    case 7:
      if (o_.last_number) add(detail::last_number(tail), AnswerSource::kLastNumber);
      return;
    case 8: {  // a short word answer ("Monday", "even"): at most two words
      std::string_view t = trim(text);
      if (o_.whole && t.size() <= 40 && t.find(' ') == t.rfind(' ')) {
        add(clean_answer(t), AnswerSource::kWhole);
      }
      return;
    }
    default:
      done_ = true;
  }
}

// The anchored span of a box of prose: "The answer is 3, not 2." -> "3".
void CandidateStream::box_anchor(const std::string& span) {
  if (auto v = detail::after_copula(span)) add(clean_answer(*v), AnswerSource::kBoxed);
  add(clean_answer(span), AnswerSource::kBoxed);
  add(detail::first_number(span), AnswerSource::kBoxed);
}

std::vector<Extracted> extract_candidates(std::string_view completion, const ExtractOptions& o,
                                          bool gold_is_choice) {
  CandidateStream stream(completion, o, gold_is_choice);
  std::vector<Extracted> out;
  while (auto c = stream.next()) out.push_back(std::move(*c));
  return out;
}

Extracted extract_answer(std::string_view completion, const ExtractOptions& options) {
  CandidateStream stream(completion, options, false);
  auto first = stream.next();
  return first ? std::move(*first) : Extracted{};
}

std::string extract_gold(std::string_view answer) {
  constexpr size_t kTail = 32768;
  std::string_view tail = answer.size() > kTail ? answer.substr(answer.size() - kTail) : answer;
  if (auto a = from_gsm8k(answer)) return *a;
  if (auto a = boxed_run(answer)) return *a;
  if (auto a = from_whole(answer)) return *a;
  if (auto a = detail::after_anchor(tail)) {
    std::string cleaned = clean_answer(*a);
    if (!detail::has_prose(detail::normalize(cleaned)) || choice_of(cleaned)) return cleaned;
    if (auto n = detail::first_number(*a)) return *n;
  }
  if (auto a = detail::last_latex(tail)) return clean_answer(*a);
  std::string whole = clean_answer(answer);
  if (whole.size() > 40) {
    if (auto n = detail::last_number(tail)) return *n;
  }
  return whole;
}

std::optional<char> choice_of(std::string_view answer) {
  std::string n = detail::normalize(answer);
  std::string key;
  for (char c : n) {
    if (c != ' ' && c != '(' && c != ')' && c != '.' && c != '{' && c != '}') key += c;
  }
  if (key.size() == 1 && key[0] >= 'A' && key[0] <= 'J') return key[0];
  // "(B) 5": a lettered option with its value
  std::string_view v = trim(n);
  if (v.size() >= 4 && v[0] == '(' && v[1] >= 'A' && v[1] <= 'J' && v[2] == ')' && v[3] == ' ') {
    return v[1];
  }
  // "C Cecile": an option letter with the option's text (a capitalised word)
  auto up = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto low = [](char c) { return c >= 'a' && c <= 'z'; };
  if (v.size() >= 4 && v[0] >= 'A' && v[0] <= 'E' && v[1] == ' ' && up(v[2]) && low(v[3])) {
    return v[0];
  }
  return std::nullopt;
}

bool is_choice_letter(std::string_view answer) { return choice_of(answer).has_value(); }

namespace {

constexpr std::pair<AnswerSource, const char*> kSourceNames[] = {
    {AnswerSource::kNone, "none"},         {AnswerSource::kAnswerTag, "answer_tag"},
    {AnswerSource::kBoxed, "boxed"},       {AnswerSource::kAnswerIs, "answer_is"},
    {AnswerSource::kGsm8k, "gsm8k"},       {AnswerSource::kWhole, "whole"},
    {AnswerSource::kLatex, "latex"},       {AnswerSource::kLastNumber, "last_number"},
    {AnswerSource::kChoice, "choice"},
};

constexpr std::pair<ThinkMode, const char*> kThinkNames[] = {
    {ThinkMode::kIgnore, "ignore"}, {ThinkMode::kAfter, "after"}, {ThinkMode::kRequire, "require"}};

}  // namespace

const char* answer_source_name(AnswerSource s) {
  for (const auto& [source, name] : kSourceNames) {
    if (source == s) return name;
  }
  return "?";
}

std::optional<AnswerSource> parse_answer_source(std::string_view name) {
  for (const auto& [source, n] : kSourceNames) {
    if (name == n) return source;
  }
  return std::nullopt;
}

const char* think_mode_name(ThinkMode m) {
  for (const auto& [mode, name] : kThinkNames) {
    if (mode == m) return name;
  }
  return "?";
}

std::optional<ThinkMode> parse_think_mode(std::string_view name) {
  for (const auto& [mode, n] : kThinkNames) {
    if (name == n) return mode;
  }
  return std::nullopt;
}

const char* verdict_name(MathVerdict v) {
  switch (v) {
    case MathVerdict::kEqual: return "equal";
    case MathVerdict::kNotEqual: return "not_equal";
    case MathVerdict::kUnparsable: return "unparsable";
  }
  return "?";
}

}  // namespace aha::rewards
