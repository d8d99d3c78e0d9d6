// Text helpers of answer extraction: answer anchors in several languages, the last LaTeX
// span, numbers and choice letters in prose, and the cleanup of an extracted span. Every scan
// is linear in the text.
#include "math_text.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

namespace aha::rewards::detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool non_ascii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// Case-insensitive (ASCII) rfind of a lowercase needle.
size_t rfind_ci(std::string_view hay, std::string_view needle) {
  if (needle.empty() || needle.size() > hay.size()) return std::string_view::npos;
  for (size_t i = hay.size() - needle.size() + 1; i-- > 0;) {
    if (lower(hay[i]) != needle[0]) continue;
    size_t k = 1;
    while (k < needle.size() && lower(hay[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

// Answer anchors, lowercase; the ASCII letters of the text are lowered before matching.
constexpr const char* kAnchors[] = {
    // English
    "final answer is", "final answer:", "answer is", "answer:", "answer :", "answer**:",
    // Chinese
    "最终答案是", "最终答案为", "最终答案：", "答案是", "答案为", "答案：", "答案:", "答：", "答:",
    // French
    "la réponse est", "réponse finale est", "réponse finale", "réponse :", "réponse:",
    "réponse est",
    // German
    "die antwort ist", "antwort ist", "antwort lautet", "antwort:", "antwort :", "ergebnis ist",
    "ergebnis:",
    // Spanish, Portuguese, Italian
    "la respuesta es", "respuesta final es", "respuesta final", "respuesta:", "a resposta é",
    "resposta final é", "resposta:", "la risposta è", "risposta finale è", "risposta:",
    "respuesta es", "resposta é", "risposta è", "respuesta correcta es", "resultado es",
    "bonne réponse est", "résultat est", "resultado é",
    // Russian
    "ответ:", "Ответ:", "ответ —", "Ответ —", "ответ равен", "Ответ равен", "ответ -",
    "Ответ -", "окончательный ответ", "Окончательный ответ",
    // Japanese
    "答えは", "答え：", "答え:", "解答：", "解答:", "正解は", "最終的な答えは",
    // Arabic, Hindi
    "الإجابة هي", "الإجابة:", "उत्तर है", "उत्तर:",
    // Korean
    "정답은", "답은", "답:", "답：",
};

// Past ": ", "：", "**", "is" and spaces after an anchor.
size_t skip_anchor_tail(std::string_view s, size_t i) {
  while (i < s.size()) {
    if (is_space(s[i]) || s[i] == ':' || s[i] == '*' || s[i] == '=') {
      ++i;
    } else if (s.compare(i, 3, "：") == 0) {
      i += 3;
    } else {
      break;
    }
  }
  return i;
}

// The end of the sentence that starts at `from`: a newline, "。", or a period that is not a
// decimal point; LaTeX spans ($..$, \[..\]) are not cut.
size_t sentence_end(std::string_view s, size_t from) {
  bool in_dollar = false;
  for (size_t i = from; i < s.size() && i < from + 600; ++i) {
    char c = s[i];
    if (c == '$') in_dollar = !in_dollar;
    if (in_dollar) continue;
    if (c == '\n' && !(i + 1 < s.size() && s[i + 1] == '\\')) return i;
    if (c == '.' && (i + 1 == s.size() || is_space(s[i + 1]))) return i;
    if (s.compare(i, 3, "。") == 0) return i;
  }
  return std::min(s.size(), from + 600);
}

bool spacer_only(std::string_view gap) {
  std::string g;
  for (char c : gap) {
    if (!is_space(c) && c != ',') g += lower(c);
  }
  return g.empty() || g == "and" || g == "or";
}

struct Span {
  size_t open, inner, inner_end, close;  // [open, close) with content [inner, inner_end)
};

// The next math span at or after i; open == npos when none.
Span next_span(std::string_view s, size_t i) {
  for (; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char d = s[i + 1];
      if (d == '[') {
        size_t end = s.find("\\]", i + 2);
        if (end != std::string_view::npos) return {i, i + 2, end, end + 2};
        return {std::string_view::npos, 0, 0, 0};  // nothing closes it: stop (stays linear)
      }
      if (d == '(') {
        // inline math stays on one line, as `$..$` (Math-Verify's rule): when nothing closes
        // it there, no later opener on that line can be closed either, so skip to the line's end
        size_t nl = std::min(s.find('\n', i + 2), s.size());
        size_t end = s.substr(0, nl).find("\\)", i + 2);
        if (end != std::string_view::npos) return {i, i + 2, end, end + 2};
        i = nl;
        continue;
      }
      ++i;  // \$ and other escapes
      continue;
    }
    if (s[i] != '$') continue;
    bool display = i + 1 < s.size() && s[i + 1] == '$';
    size_t from = i + (display ? 2 : 1);
    if (!display && i > 0 && is_digit(s[i - 1])) continue;  // "5$" is money, not math
    for (size_t j = from; j < s.size(); ++j) {
      if (s[j] == '\\') {
        ++j;
        continue;
      }
      if (s[j] == '\n' && !display) break;  // inline math stays on one line
      if (s[j] != '$') continue;
      if (display && !(j + 1 < s.size() && s[j + 1] == '$')) continue;
      return {i, from, j, j + (display ? 2 : 1)};
    }
    if (display) return {std::string_view::npos, 0, 0, 0};
  }
  return {std::string_view::npos, 0, 0, 0};
}

bool number_char(std::string_view s, size_t i) {
  char c = s[i];
  if (is_digit(c)) return true;
  // '.', ',' and '/' only between digits
  if (c == '.' || c == ',' || c == '/') {
    return i > 0 && i + 1 < s.size() && is_digit(s[i - 1]) && is_digit(s[i + 1]);
  }
  return false;
}

// The number whose last character is at `last`.
std::string number_ending_at(std::string_view s, size_t last) {
  size_t b = last;
  while (b > 0 && number_char(s, b - 1)) --b;
  size_t e = last + 1;
  if (b > 0 && s[b - 1] == '-' && (b == 1 || !is_alpha(s[b - 2]))) --b;
  std::string out(s.substr(b, e - b));
  size_t k = e;
  while (k < s.size() && s[k] == ' ') ++k;
  std::string_view after = s.substr(k);
  for (std::string_view pct : {"%", "\\%", "\xef\xbc\x85" /* ％ */, "percent", "per cent"}) {
    if (after.substr(0, pct.size()) == pct) {
      out += '%';
      break;
    }
  }
  return out;
}

bool letter_boundary(std::string_view s, size_t i) {
  if (i >= s.size()) return true;
  char c = s[i];
  // "E'" (a prime) is another symbol than the letter E
  return !is_alpha(c) && !is_digit(c) && c != '_' && c != '\\' && c != '^' && c != '\'';
}

const char* const kMathWords[] = {"sin",  "cos",  "tan",  "sec",    "csc",    "cot",   "arcsin",
                                  "arccos", "arctan", "sinh", "cosh", "tanh", "ln",    "log",
                                  "exp",  "sqrt", "pi",   "inf",    "infty",  "mod",   "min",
                                  "max",  "gcd",  "lcm",  "deg",    "det",    "and",   "or",
                                  "frac", "cdot", "pmod", "bmod"};

// Two-letter words that are English, not products of two variables.
bool stop_word(std::string_view w) {
  if (w.size() != 2 || !std::islower(static_cast<unsigned char>(w[1]))) return false;
  // "So", "It", "We" open sentences; "ME" stays a segment's name
  char lower[2] = {static_cast<char>(std::tolower(static_cast<unsigned char>(w[0]))), w[1]};
  std::string_view l(lower, 2);
  for (const char* m : {"so", "is", "it", "we", "to", "of", "if", "us", "my", "he", "do", "me"}) {
    if (l == m) return true;
  }
  return false;
}

bool math_word(std::string_view w) {
  for (const char* m : kMathWords) {
    if (w == m) return true;
  }
  return false;
}

// "$x$", "$$x$$", "\\[x\\]", "\\(x\\)" -> "x" when the span is the whole text.
std::string_view unwrap_math(std::string_view s) {
  s = trim(s);
  Span sp = next_span(s, 0);
  if (sp.open == 0 && sp.close == s.size()) return trim(s.substr(sp.inner, sp.inner_end - sp.inner));
  return s;
}

}  // namespace

std::pair<size_t, size_t> top_level_eqs(std::string_view s) {
  size_t first = std::string_view::npos, last = std::string_view::npos;
  int depth = 0;
  for (size_t k = 0; k < s.size(); ++k) {
    char c = s[k];
    if (c == '{' || c == '(' || c == '[') ++depth;
    if (c == '}' || c == ')' || c == ']') --depth;
    if (c != '=' || depth != 0) continue;
    char prev = k > 0 ? s[k - 1] : ' ';
    if (prev == '<' || prev == '>' || prev == '!') continue;
    if (first == std::string_view::npos) first = k;
    last = k;
  }
  return {first, last};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

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

// Whether text may hold an anchor: every anchor has a ':' or a non-ASCII byte or a word.
bool may_have_anchor(std::string_view s) {
  int run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ':' || non_ascii(c)) return true;
    if (is_alpha(c)) {
      if (run == 0 && i > 0 && s[i - 1] == '\\') run = -1000;  // a command name
      if (++run >= 2) return true;
    } else {
      run = 0;
    }
  }
  return false;
}

std::optional<std::string> after_anchor(std::string_view text) {
  if (!may_have_anchor(text)) return std::nullopt;
  size_t best = std::string_view::npos, best_end = 0;
  for (const char* a : kAnchors) {
    size_t p = rfind_ci(text, a);
    if (p == std::string_view::npos) continue;
    size_t end = p + std::strlen(a);
    if (best == std::string_view::npos || end > best_end) {
      best = p;
      best_end = end;
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  size_t from = skip_anchor_tail(text, best_end);
  std::string_view rest = text.substr(from, sentence_end(text, from) - from);
  rest = trim(rest);
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

std::optional<std::string> after_copula(std::string_view span) {
  size_t best = std::string_view::npos, best_end = 0;
  for (const char* c : {" is ", " are ", " equals ", " was ", " est ", " ist ", " es ", " é ",
                        " è ", " равно ", " равен ", "是", "为", "は"}) {
    size_t p = rfind_ci(span, c);
    if (p != std::string_view::npos && (best == std::string_view::npos || p > best)) {
      best = p;
      best_end = p + std::strlen(c);
    }
  }
  if (best == std::string_view::npos || !has_prose(span.substr(0, best))) return std::nullopt;
  std::string_view rest = trim(span.substr(best_end));
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

std::optional<std::string> last_latex(std::string_view text) {
  Span spans[6];
  int n = 0;
  for (Span sp = next_span(text, 0); sp.open != std::string_view::npos;
       sp = next_span(text, sp.close)) {
    // keep a run of spans separated only by "," / "and" / "or"; a new run restarts it
    bool joins = n > 0 && n < 6 && spacer_only(text.substr(spans[n - 1].close,
                                                         sp.open - spans[n - 1].close));
    if (!joins) n = 0;
    spans[n++] = sp;
  }
  if (n == 0) return std::nullopt;
  std::string out;
  for (int k = 0; k < n; ++k) {
    std::string_view inner = trim(text.substr(spans[k].inner, spans[k].inner_end - spans[k].inner));
    if (inner.empty()) continue;
    if (!out.empty()) out += ", ";
    out += inner;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

bool one_span_or_none(std::string_view text) {
  text = trim(text);
  Span sp = next_span(text, 0);
  return sp.open == std::string_view::npos || (sp.open == 0 && sp.close == text.size());
}

// Digits right after an ASCII letter belong to a name ("H2O", "x2", "AZYUK2A"), not a value.
bool in_identifier(std::string_view text, size_t first_digit) {
  return first_digit > 0 && is_alpha(text[first_digit - 1]);
}

std::optional<std::string> first_number(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (!is_digit(text[i])) continue;
    size_t j = i;
    while (j + 1 < text.size() && number_char(text, j + 1)) ++j;
    if (in_identifier(text, i)) {
      i = j;
      continue;
    }
    return number_ending_at(text, j);
  }
  return std::nullopt;
}

size_t last_number_end(std::string_view text) {
  for (size_t i = text.size(); i-- > 0;) {
    if (!is_digit(text[i])) continue;
    size_t b = i;
    while (b > 0 && number_char(text, b - 1)) --b;
    // an exponent or index ("m^2", "x_1", "{2}" of m^{2}) is not the answer
    char before = b > 0 ? text[b - 1] : ' ';
    bool braced_exp = before == '{' && b >= 2 && (text[b - 2] == '^' || text[b - 2] == '_');
    if (before == '^' || before == '_' || braced_exp || in_identifier(text, b)) {
      i = b;
      continue;
    }
    return i + 1;
  }
  return 0;
}

std::optional<std::string> last_number(std::string_view text) {
  size_t end = last_number_end(text);
  if (end == 0) return std::nullopt;
  return number_ending_at(text, end - 1);
}

size_t last_span_close(std::string_view text) {
  size_t close = 0;
  for (Span sp = next_span(text, 0); sp.open != std::string_view::npos;
       sp = next_span(text, sp.close)) {
    close = sp.close;
  }
  return close;
}

bool symbolic(std::string_view latex) {
  size_t eq = latex.rfind('=');
  if (eq != std::string_view::npos) latex.remove_prefix(eq + 1);
  for (size_t i = 0; i < latex.size(); ++i) {
    if (latex[i] == '\\') {  // a command name is no variable
      while (i + 1 < latex.size() && is_alpha(latex[i + 1])) ++i;
      continue;
    }
    if (is_alpha(latex[i])) return true;
  }
  return false;
}

std::optional<std::string> choice_at_line_start(std::string_view text) {
  std::optional<std::string> found;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && text[i - 1] != '\n') continue;
    size_t k = i;
    while (k < text.size() && (text[k] == ' ' || text[k] == '*' || text[k] == '(')) ++k;
    if (k < text.size() && text[k] >= 'A' && text[k] <= 'E' && letter_boundary(text, k + 1)) {
      found = std::string(1, text[k]);
    }
  }
  return found;
}

// Whether the letter at i is a term of an expression ("\mathrm{E}*2", "2 + C"): an operator
// next to it, past braces and spaces.
bool operand(std::string_view text, size_t i) {
  // not "-" nor "=": "B - because ...", "- B" (a bullet) and "answer = B" are prose
  auto is_op = [](char c) { return std::strchr("*/+^", c) != nullptr; };
  size_t k = i + 1;
  while (k < text.size() && (text[k] == '}' || text[k] == ' ')) ++k;
  bool bold = k + 1 < text.size() && text[k] == '*' && text[k + 1] == '*';  // "**B**"
  if (k < text.size() && is_op(text[k]) && !bold) return true;
  size_t b = i;
  while (b > 0 && (text[b - 1] == '{' || text[b - 1] == ' ')) --b;
  while (b > 0 && is_alpha(text[b - 1])) --b;  // a command before the brace: \mathrm
  if (b > 0 && text[b - 1] == '\\') --b;
  while (b > 0 && text[b - 1] == ' ') --b;
  return b > 0 && is_op(text[b - 1]) && !(b >= 2 && text[b - 2] == '*');
}

std::optional<std::string> choice_letter(std::string_view text, bool last) {
  std::optional<std::string> found;
  const char max_letter = 'E';  // a lone "I" in prose is no choice; "\boxed{G}" compares as text
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c < 'A' || c > max_letter) continue;
    bool before = i == 0 || (!is_alpha(text[i - 1]) && !is_digit(text[i - 1]) &&
                             text[i - 1] != '\\' && text[i - 1] != '_' && text[i - 1] != '^');
    if (!before || !letter_boundary(text, i + 1) || operand(text, i)) continue;
    found = std::string(1, c);
    if (!last) return found;
  }
  return found;
}

std::string clean_answer(std::string_view s) {
  s = trim(s);
  if (s.size() > 20000) return std::string(s);  // far past what the checker parses
  std::string label;
  if (auto rest = after_anchor(s)) {  // a label inside the span: "Answer: 9", "答案：9"
    label = std::move(*rest);
    s = trim(label);
    // "\text{Answer: } \frac12": the brace that closed the label's \text goes with it
    if (!s.empty() && s.front() == '}') s = trim(s.substr(1));
  }
  s = unwrap_math(s);
  while (!s.empty()) {  // trailing sentence punctuation
    if (s.back() == '.' || s.back() == ',' || s.back() == ';' || is_space(s.back())) {
      s.remove_suffix(1);
    } else if (s.size() >= 3 && s.compare(s.size() - 3, 3, "。") == 0) {
      s.remove_suffix(3);
    } else {
      break;
    }
  }
  s = unwrap_math(s);
  // "area = 72000 / 18 = 4000": a left side in words is a label, the value is the last side
  auto [first_eq, last_eq] = top_level_eqs(s);
  if (first_eq != std::string_view::npos && has_prose(s.substr(0, first_eq))) {
    s = trim(s.substr(last_eq + 1));
  }
  return std::string(s);
}

bool has_prose(std::string_view s) {
  bool word_before = false;  // a word of 2+ letters, then only spaces
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (non_ascii(c)) return true;
    if (c == '\\') {  // a command name is not prose, nor an environment name
      size_t j = ++i;
      while (i < s.size() && is_alpha(s[i])) ++i;
      std::string_view cmd = s.substr(j, i - j);
      if ((cmd == "begin" || cmd == "end") && i < s.size() && s[i] == '{') {
        size_t close = s.find('}', i);
        i = close == std::string_view::npos ? s.size() : close + 1;
      }
      word_before = false;
      continue;
    }
    if (!is_alpha(c)) {
      if (!is_space(c)) word_before = false;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_alpha(s[j])) ++j;
    std::string_view w = s.substr(i, j - i);
    if (w.size() >= 3 && !math_word(w)) return true;
    bool word = w.size() >= 2 && !math_word(w);
    if (word && word_before) return true;  // "it is", "so we"
    if (stop_word(w)) return true;
    word_before = word;
    i = j;
  }
  return false;
}

}  // namespace aha::rewards::detail
