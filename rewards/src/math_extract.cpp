// Answer extraction: the final answer of a completion (boxed, <answer> tag, "the answer is",
// GSM8K "####", last number) and the gold answer of a dataset row.
#include <cctype>
#include <cstring>

#include "aha/rewards/math.h"

namespace aha::rewards {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Case-insensitive rfind of an ASCII needle.
size_t rfind_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return std::string_view::npos;
  for (size_t i = hay.size() - needle.size() + 1; i-- > 0;) {
    size_t k = 0;
    while (k < needle.size() &&
           std::tolower(static_cast<unsigned char>(hay[i + k])) == needle[k]) {
      ++k;
    }
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

// The content of a balanced {...} starting at text[open] == '{'; nullopt when unbalanced.
std::optional<std::string_view> braced(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      ++i;  // \{ and \} do not count
      continue;
    }
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return text.substr(open + 1, i - open - 1);
  }
  return std::nullopt;
}

// Strips a trailing sentence period ("42." -> "42") and surrounding $ signs.
std::string clean_tail(std::string_view s) {
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ',' || s.back() == ';')) {
    s.remove_suffix(1);
    s = trim(s);
  }
  if (s.size() >= 2 && s.front() == '$' && s.back() == '$') s = trim(s.substr(1, s.size() - 2));
  return std::string(s);
}

std::optional<std::string> from_answer_tag(std::string_view text) {
  size_t close = text.rfind("</answer>");
  if (close == std::string_view::npos) return std::nullopt;
  size_t open = text.rfind("<answer>", close);
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view inner = text.substr(open + 8, close - open - 8);
  if (auto boxed = last_boxed(inner)) return *boxed;
  return clean_tail(inner);
}

// "the answer is X": X up to the end of the line or of the sentence.
std::optional<std::string> from_answer_is(std::string_view text) {
  size_t at = rfind_ci(text, "answer is");
  size_t len = 9;
  if (at == std::string_view::npos) {
    at = rfind_ci(text, "answer:");
    len = 7;
  }
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(at + len);
  // "answer is: 5", "**Answer:** 5"
  while (!rest.empty() && (rest.front() == ':' || rest.front() == '*' || rest.front() == ' ')) {
    rest.remove_prefix(1);
  }
  size_t end = rest.size();
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '\n') {
      end = i;
      break;
    }
    // A period ends the sentence unless it is a decimal point.
    if (rest[i] == '.' && (i + 1 == rest.size() || std::isspace(static_cast<unsigned char>(rest[i + 1])))) {
      end = i;
      break;
    }
  }
  std::string out = clean_tail(rest.substr(0, end));
  if (out.empty()) return std::nullopt;
  if (auto boxed = last_boxed(out)) return *boxed;
  return out;
}

std::optional<std::string> from_gsm8k(std::string_view text) {
  size_t at = text.rfind("####");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(at + 4);
  size_t nl = rest.find('\n');
  std::string out = clean_tail(rest.substr(0, nl));
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<std::string> from_last_number(std::string_view text) {
  size_t i = text.size();
  while (i > 0 && !std::isdigit(static_cast<unsigned char>(text[i - 1]))) --i;
  if (i == 0) return std::nullopt;
  size_t end = i;
  while (i > 0 && (std::isdigit(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '.' ||
                   text[i - 1] == ',' || text[i - 1] == '/')) {
    --i;
  }
  while (i < end && !std::isdigit(static_cast<unsigned char>(text[i]))) ++i;  // ",5" -> "5"
  if (i > 0 && text[i - 1] == '-') --i;
  return std::string(text.substr(i, end - i));
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
    auto inner = braced(text, i);
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
  return clean_tail(text.substr(i, end - i));
}

Extracted extract_answer(std::string_view text, const ExtractOptions& o) {
  if (o.answer_tag) {
    if (auto a = from_answer_tag(text)) return {std::move(*a), AnswerSource::kAnswerTag};
  }
  if (o.boxed) {
    if (auto a = last_boxed(text)) return {std::move(*a), AnswerSource::kBoxed};
  }
  if (o.answer_is) {
    if (auto a = from_answer_is(text)) return {std::move(*a), AnswerSource::kAnswerIs};
  }
  if (o.gsm8k) {
    if (auto a = from_gsm8k(text)) return {std::move(*a), AnswerSource::kGsm8k};
  }
  if (o.last_number) {
    if (auto a = from_last_number(text)) return {std::move(*a), AnswerSource::kLastNumber};
  }
  return {};
}

std::string extract_gold(std::string_view answer) {
  if (auto a = from_gsm8k(answer)) return *a;
  if (auto a = last_boxed(answer)) return *a;
  return clean_tail(answer);
}

const char* answer_source_name(AnswerSource s) {
  switch (s) {
    case AnswerSource::kNone: return "none";
    case AnswerSource::kBoxed: return "boxed";
    case AnswerSource::kAnswerTag: return "answer_tag";
    case AnswerSource::kAnswerIs: return "answer_is";
    case AnswerSource::kGsm8k: return "gsm8k";
    case AnswerSource::kLastNumber: return "last_number";
    case AnswerSource::kWhole: return "whole";
  }
  return "?";
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
