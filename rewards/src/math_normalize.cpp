// LaTeX normalisation for the math checker: one pass over commands (\left, \dfrac, spacing,
// \text{..}, \cdot, \le ...), then degrees, thousands separators, "and"/"or" lists and
// trailing unit words.
#include <cctype>
#include <cstring>
#include <string>

#include "math_internal.h"

namespace aha::rewards::detail {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

struct Replacement {
  const char* cmd;
  const char* out;
};

// Commands replaced wholesale (name without the backslash).
constexpr Replacement kCommands[] = {
    {"left", ""}, {"right", ""}, {"bigl", ""}, {"bigr", ""}, {"Bigl", ""}, {"Bigr", ""},
    {"biggl", ""}, {"biggr", ""}, {"big", ""}, {"Big", ""}, {"bigg", ""}, {"Bigg", ""},
    {"displaystyle", ""}, {"textstyle", ""}, {"limits", ""}, {"nolimits", ""},
    {"quad", ","}, {"qquad", ","}, {"circ", ""}, {"degree", ""}, {"dfrac", "\\frac"},
    {"tfrac", "\\frac"}, {"cfrac", "\\frac"}, {"dbinom", "\\binom"}, {"tbinom", "\\binom"},
    {"cdot", "*"}, {"times", "*"}, {"ast", "*"}, {"div", "/"}, {"lbrace", "\\{"},
    {"rbrace", "\\}"}, {"langle", "("}, {"rangle", ")"}, {"emptyset", "\\{\\}"},
    {"varnothing", "\\{\\}"}, {"leq", "<="}, {"le", "<="}, {"leqslant", "<="}, {"geq", ">="},
    {"ge", ">="}, {"geqslant", ">="}, {"neq", "!="}, {"ne", "!="}, {"lt", "<"}, {"gt", ">"},
    {"in", "="}, {"equiv", "="}, {"mid", "|"}, {"vert", "|"}, {"lvert", "|"}, {"rvert", "|"}, {"dots", ""},
    {"ldots", ""}, {"cdots", ""}, {"infin", "\\infty"}, {"hline", ""}, {"Big", ""},
    {"boldsymbol", ""}, {"bm", ""}, {"vec", ""}, {"overline", ""},
};

// Commands whose braced argument is plain text: replaced by " content ".
constexpr const char* kTextCommands[] = {"boxed", "fbox", "text",   "textbf", "textit", "textrm", "mathrm",
                                         "mbox",   "mathbf", "mathit", "textnormal", "hbox",
                                         "textup", "mathsf", "mathtt", "mathcal", "mathscr",
                                         "textsf", "texttt", "emph"};

// Reads a balanced {...} at s[i] == '{'; returns the end index (past '}') or npos.
size_t skip_braced(std::string_view s, size_t i) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string_view::npos;
}

// A \text{} that follows a number and holds only words is a unit ("5 \text{ cm}").
bool is_unit_text(std::string_view before, std::string_view content) {
  size_t b = before.size();
  while (b > 0 && is_space(before[b - 1])) --b;
  if (b == 0) return false;
  char last = before[b - 1];
  if (!is_digit(last) && last != '}' && last != ')' && last != '%') return false;
  bool letters = false;
  for (char c : content) {
    if (is_alpha(c)) {
      letters = true;
    } else if (!is_space(c) && c != '.' && c != '/') {  // "km/h"
      return false;
    }
  }
  std::string_view t = content;
  while (!t.empty() && is_space(t.front())) t.remove_prefix(1);
  while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
  // \mathrm{i} and \mathrm{e} are the imaginary unit and Euler's number, not units
  return letters && t != "and" && t != "or" && t != "i" && t != "e";
}

// Past "^2" or "^{2}" at s[i], if any.
size_t skip_exponent(std::string_view s, size_t i) {
  size_t k = i;
  while (k < s.size() && is_space(s[k])) ++k;
  if (k >= s.size() || s[k] != '^') return i;
  ++k;
  if (k < s.size() && s[k] == '{') {
    size_t end = skip_braced(s, k);
    return end == std::string_view::npos ? i : end;
  }
  return k < s.size() && is_digit(s[k]) ? k + 1 : i;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

// The command pass: s has no degree signs any more.
std::string commands_pass(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '$' || c == '~') {
      if (c == '~') out += ' ';
      ++i;
      continue;
    }
    if (c != '\\' || i + 1 == s.size()) {
      out += c;
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < s.size() && is_alpha(s[j])) ++j;
    if (j == i + 1) {  // one-symbol command: \, \; \! \{ \% \\ ...
      char sym = s[i + 1];
      if (sym == ',' || sym == ';' || sym == ':' || sym == '!' || sym == ' ' || sym == '$' ||
          sym == '(' || sym == ')' || sym == '[' || sym == ']') {
        // dropped
      } else if (sym == '%') {
        out += '%';
      } else {
        out += '\\';
        out += sym;
      }
      i += 2;
      continue;
    }
    std::string_view name = s.substr(i + 1, j - i - 1);
    bool done = false;
    for (const char* t : kTextCommands) {
      if (name == t && j < s.size() && s[j] == '{') {
        size_t end = skip_braced(s, j);
        if (end == std::string_view::npos) break;
        if (is_unit_text(out, s.substr(j + 1, end - j - 2))) {
          i = skip_exponent(s, end);  // "5 \text{ cm}^2" -> "5"
          done = true;
          break;
        }
        out += ' ';
        out += commands_pass(s.substr(j + 1, end - j - 2));
        out += ' ';
        i = end;
        done = true;
        break;
      }
    }
    if (done) continue;
    if (name == "operatorname" && j < s.size() && s[j] == '{') {
      size_t end = skip_braced(s, j);
      if (end != std::string_view::npos) {
        out += '\\';
        out += s.substr(j + 1, end - j - 2);
        i = end;
        continue;
      }
    }
    for (const auto& r : kCommands) {
      if (name == r.cmd) {
        out += r.out;
        i = j;
        // "\left." and "\right." are invisible delimiters.
        if ((name == "left" || name == "right") && i < s.size() && s[i] == '.') ++i;
        done = true;
        break;
      }
    }
    if (done) continue;
    out.append(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool is_function_word(std::string_view w) {
  static constexpr const char* kWords[] = {"sin", "cos", "tan", "ln", "log", "exp", "sqrt",
                                           "pi",  "sec", "csc", "cot", "inf", "infty"};
  for (const char* k : kWords) {
    if (w == k) return true;
  }
  return false;
}

bool all_lower(std::string_view w) {
  for (char c : w) {
    if (c < 'a' || c > 'z') return false;
  }
  return true;
}

// Removes trailing unit words after a number: "5 cm", "12 square feet", "3 m^2", and long unit
// words written without a space ("10weeks"). A short word stuck to a number is a product, not a
// unit ("5cm" = 5·c·m, "2x"), as MARIO's and Math-Verify's graders read it: a space is required.
void strip_units(std::string& s) {
  size_t e = s.size();
  while (e > 0 && is_space(s[e - 1])) --e;
  // optional exponent on the last unit: ^2, ^{2}
  size_t p = e;
  while (p > 0 && (is_digit(s[p - 1]) || s[p - 1] == '{' || s[p - 1] == '}')) --p;
  if (p < e && p > 0 && s[p - 1] == '^') e = p - 1;
  // the maximal run of words (letters and spaces) before it
  size_t b = e;
  while (b > 0 && (is_alpha(s[b - 1]) || is_space(s[b - 1]) ||
                   (s[b - 1] == '/' && b >= 2 && is_alpha(s[b - 2])))) {  // "km/h"
    --b;
  }
  std::string_view run = std::string_view(s).substr(b, e - b);
  if (run.empty()) return;
  const bool stuck = !is_space(run.front());
  // "2x", "5cm": the letters belong to the number; a long word is a unit ("10weeks", "5days")
  bool long_word = run.size() >= 4 && all_lower(run) && !is_function_word(run);
  if (stuck && !long_word) return;
  std::string_view word = run;
  while (!word.empty() && is_space(word.front())) word.remove_prefix(1);
  while (!word.empty() && is_space(word.back())) word.remove_suffix(1);
  bool one_unit_letter =
      stuck || (word.size() == 1 && std::strchr("gmslLtJWNVK", word[0]) != nullptr);
  for (size_t i = 0; i < run.size() && !one_unit_letter;) {  // every word must look like a unit
    while (i < run.size() && (is_space(run[i]) || run[i] == '/')) ++i;
    size_t j = i;
    while (j < run.size() && is_alpha(run[j])) ++j;
    bool per = i > 0 && run[i - 1] == '/';  // "km/h": one letter after a slash is a unit
    if (j > i && ((j - i < 2 && !per) || is_function_word(run.substr(i, j - i)))) return;
    i = j;
  }
  size_t q = b;
  while (q > 0 && is_space(s[q - 1])) --q;
  if (q == 0) return;
  char before = s[q - 1];
  if (!is_digit(before) && before != ')' && before != '}' && before != '%') return;
  s.resize(q);
}

// Unicode math symbols models sometimes write instead of LaTeX.
constexpr Replacement kUnicode[] = {
    {"\xE2\x88\x92", "-"},       {"\xE2\x80\x93", "-"},        {"\xC3\x97", "*"},
    {"\xC3\xB7", "/"},            {"\xC2\xB7", "*"},             {"\xE2\x8B\x85", "*"},
    {"\xCF\x80", "\\pi "},      {"\xE2\x88\x9E", "\\infty "}, {"\xE2\x89\xA4", "<="},
    {"\xE2\x89\xA5", ">="},      {"\xE2\x89\xA0", "!="},       {"\xE2\x88\x9A", "\\sqrt"},
    {"\xE2\x88\xAA", "\\cup "}, {"\xC2\xA0", " "}, {"\xE2\x89\x88", "\\approx "},
    // currency signs: the value is the number
    {"\xE2\x82\xAC", ""}, {"\xC2\xA3", ""}, {"\xC2\xA5", ""}, {"\xE2\x82\xB9", ""},
    {"\xE2\x82\xBD", ""}, {"\xE2\x82\xA9", ""}, {"\xEF\xBC\x8C", ","},
};

// Unicode superscripts: a run becomes "^{..}" ("10⁻³" -> "10^{-3}").
void superscripts(std::string& s) {
  static constexpr const char* kSup[] = {"\xE2\x81\xB0", "\xC2\xB9", "\xC2\xB2", "\xC2\xB3",
                                         "\xE2\x81\xB4", "\xE2\x81\xB5", "\xE2\x81\xB6",
                                         "\xE2\x81\xB7", "\xE2\x81\xB8", "\xE2\x81\xB9"};
  static constexpr const char* kMinus = "\xE2\x81\xBB";
  if (s.find('\xC2') == std::string::npos && s.find('\xE2') == std::string::npos) return;
  std::string out;
  bool open = false;
  for (size_t i = 0; i < s.size();) {
    char digit = 0;
    size_t len = 0;
    for (int d = 0; d < 10 && !digit; ++d) {
      size_t n = std::strlen(kSup[d]);
      if (s.compare(i, n, kSup[d]) == 0) digit = static_cast<char>('0' + d), len = n;
    }
    if (!digit && s.compare(i, 3, kMinus) == 0) digit = '-', len = 3;
    if (digit) {
      if (!open) out += "^{";
      open = true;
      out += digit;
      i += len;
      continue;
    }
    if (open) out += '}';
    open = false;
    out += s[i++];
  }
  if (open) out += '}';
  s = std::move(out);
}

// "\\sqrt" (a doubled backslash before a command name, as escaped JSON leaves it) -> "\sqrt";
// "\\\\" (a row break) stays.
void undouble_backslashes(std::string& s) {
  if (s.find("\\\\") == std::string::npos) return;
  // when every command is doubled (escaped JSON pasted as text), every pair becomes one
  int single = 0, doubled = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != '\\') continue;
    size_t run = i;
    while (run < s.size() && s[run] == '\\') ++run;
    bool command = run < s.size() && is_alpha(s[run]);
    if (command) (run - i == 1 ? single : doubled) += 1;
    i = run - 1;
  }
  bool halve_all = doubled > 0 && single == 0;
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\' &&
        (halve_all || (i + 2 < s.size() && is_alpha(s[i + 2])))) {
      out += '\\';  // a pair becomes one
      ++i;
      continue;
    }
    out += s[i];
    if (s[i] == '\\' && i + 1 < s.size()) out += s[++i];
  }
  s = std::move(out);
}

// "2nd", "13th": an ordinal is its number.
void strip_ordinal(std::string& s) {
  if (s.size() < 3) return;
  std::string_view end = std::string_view(s).substr(s.size() - 2);
  if (end != "st" && end != "nd" && end != "rd" && end != "th") return;
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (!is_digit(s[i])) return;
  }
  s.resize(s.size() - 2);
}

// "4210_{7}" -> "4210_7": one spelling of a base subscript.
void base_subscripts(std::string& s) {
  for (size_t p = s.find("_{"); p != std::string::npos; p = s.find("_{", p + 1)) {
    if (p == 0 || !is_digit(s[p - 1])) continue;
    size_t q = p + 2;
    while (q < s.size() && is_digit(s[q])) ++q;
    if (q == p + 2 || q >= s.size() || s[q] != '}') continue;
    s.erase(q, 1);
    s.erase(p + 1, 1);
  }
}

// Unit words in other scripts after a number ("300分钟", "4000 千克"): dropped.
void strip_trailing_non_ascii(std::string& s) {
  size_t e = s.size();
  while (e > 0 && (static_cast<unsigned char>(s[e - 1]) >= 0x80 || is_space(s[e - 1]))) --e;
  if (e == s.size() || e == 0) return;
  if (is_digit(s[e - 1]) || s[e - 1] == '%' || s[e - 1] == '}' || s[e - 1] == ')') s.resize(e);
}

// ", ,", leading and trailing commas left by \quad and "or" lists.
void collapse_commas(std::string& s) {
  if (s.find(',') == std::string::npos) return;
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != ',') {
      out += s[i];
      continue;
    }
    size_t j = i + 1;
    int commas = 1;
    while (j < s.size() && (s[j] == ',' || is_space(s[j]))) commas += s[j++] == ',';
    bool edge = out.find_first_not_of(' ') == std::string::npos || j == s.size();
    if (edge) {
      i = j - 1;
    } else if (commas > 1) {
      out += ", ";
      i = j - 1;
    } else {
      out += ',';
    }
  }
  s = std::move(out);
}

// "\frac{\sqrt3}{3} \approx 0.577": the exact value is the answer, the decimal a gloss; but
// "x \approx 11" names its value.
void approximation(std::string& s) {
  size_t at = s.find("\\approx");
  if (at == std::string::npos || at == 0) return;
  size_t b = 0, e = at;
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  bool name = e > b && is_alpha(s[b]);
  for (size_t i = b; i < e && name; ++i) {
    name = is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_' || s[i] == '{' || s[i] == '}';
  }
  if (name) {
    s.erase(0, at + 7);
  } else {
    s.resize(at);
  }
}

// "\quadx_2": a spacing command glued to the next letter (no space written after it).
void unglue_quads(std::string& s) {
  for (size_t p = s.find("quad"); p != std::string::npos; p = s.find("quad", p + 4)) {
    if (p > 0 && s[p - 1] == '\\' && p + 4 < s.size() && is_alpha(s[p + 4])) s.insert(p + 4, " ");
  }
}

// A clock time as the whole answer: "08:34 \text{P.M.}" and "20:34:00" are "20:34"; other text
// (ratios such as "11:21") is left alone.
void clock_time(std::string& s) {
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  size_t h0 = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  size_t hour_digits = i - h0;
  if (hour_digits < 1 || hour_digits > 2 || i + 3 > s.size() || s[i] != ':' ||
      !is_digit(s[i + 1]) || !is_digit(s[i + 2])) {
    return;
  }
  int hour = std::stoi(s.substr(h0, hour_digits));
  std::string minutes = s.substr(i + 1, 2);
  i += 3;
  bool seconds = i + 3 <= s.size() && s[i] == ':' && is_digit(s[i + 1]) && is_digit(s[i + 2]);
  if (seconds && s.compare(i + 1, 2, "00") != 0) return;
  if (seconds) i += 3;
  std::string rest;  // what follows, without \text{ }, braces, dots and spaces, lowercased
  for (size_t k = i; k < s.size(); ++k) {
    if (s.compare(k, 5, "\\text") == 0 || s.compare(k, 7, "\\mathrm") == 0) {
      k = s.find('{', k);
      if (k == std::string::npos) return;
      continue;
    }
    char c = s[k];
    if (c == '{' || c == '}' || c == '.' || is_space(c)) continue;
    rest += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!rest.empty() && rest != "am" && rest != "pm") return;
  if (hour > 23 || (!rest.empty() && (hour < 1 || hour > 12))) return;
  if (rest == "pm" && hour < 12) hour += 12;
  if (rest == "am" && hour == 12) hour = 0;
  s = std::to_string(hour) + ":" + minutes;
}

// "\{x \mid x > 2\}", "\{x | x > 2\}", "\{x \in \mathbb{R} : x > 2\}": set-builder notation over
// the reals is its condition, which is then compared as an inequality.
void set_builder(std::string& s) {
  for (size_t at = s.find("\\{"); at != std::string::npos; at = s.find("\\{", at + 1)) {
    size_t i = at + 2;
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size() || !is_alpha(s[i]) || (i + 1 < s.size() && is_alpha(s[i + 1]))) continue;
    ++i;  // the variable: one letter
    while (i < s.size() && s[i] == ' ') ++i;
    for (std::string_view reals : {"\\in \\mathbb{R}", "\\in\\mathbb{R}"}) {
      if (s.compare(i, reals.size(), reals) == 0) i += reals.size();
    }
    while (i < s.size() && s[i] == ' ') ++i;
    size_t sep = s.compare(i, 4, "\\mid") == 0 ? 4 : (i < s.size() && (s[i] == '|' || s[i] == ':'));
    if (sep == 0) continue;
    size_t from = i + sep;
    int depth = 1;
    size_t end = from;
    for (; end + 1 < s.size() && depth > 0; ++end) {
      if (s.compare(end, 2, "\\{") == 0) ++depth, ++end;
      else if (s.compare(end, 2, "\\}") == 0 && --depth == 0) break;
    }
    if (depth != 0) return;
    std::string cond = s.substr(from, end - from);
    s.replace(at, end + 2 - at, cond);
  }
}

bool has_non_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

}  // namespace

std::string normalize(std::string_view input) {
  std::string s(input);
  undouble_backslashes(s);
  // "185\": a stray backslash at the end (a cut line break) commands nothing
  if (s.size() >= 2 && s.back() == '\\' && s[s.size() - 2] != '\\') s.pop_back();
  const bool non_ascii = has_non_ascii(s);  // most answers are ASCII: skip the unicode passes
  if (non_ascii) {
    superscripts(s);
    for (const auto& u : kUnicode) replace_all(s, u.cmd, u.out);
  }
  repeating_decimals(s);
  if (non_ascii || s.find("circ") != std::string::npos || s.find("degree") != std::string::npos) {
    for (const char* deg : {"^{\\circ}", "^\\circ", "^{\\circ }", "^{ \\circ}", "\xC2\xB0",
                            "^\\degree", "\\degree"}) {
      replace_all(s, deg, "`");  // the parser turns degrees into radians inside trig functions
    }
  }
  if (s.find("\\{") != std::string::npos) set_builder(s);
  if (s.find("mathbb") != std::string::npos) replace_all(s, "\\mathbb{R}", "(-\\infty,\\infty)");
  approximation(s);
  if (s.find(",\\!") != std::string::npos) thin_separators(s);
  if (s.find(':') != std::string::npos) clock_time(s);
  if (s.find("quad") != std::string::npos) unglue_quads(s);
  if (s.find("{,") != std::string::npos) {  // "14{,}916", "14 {, }916"
    for (const char* sep : {" {, }", "{, }", " {,}"}) replace_all(s, sep, "{,}");
  }
  replace_all(s, "{,}", ",");
  replace_all(s, "**", "^");  // Python powers
  if (s.find("mod") != std::string::npos) congruences(s);
  s = commands_pass(s);
  for (char& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  s = join_thousands(s);
  // "1 and 2", "x = 1 or x = 2": lists.
  if (s.find(' ') != std::string::npos) {
    for (const char* word : {" and ", " or ", " AND ", " OR "}) replace_all(s, word, ",");
  }
  if (s.find(")or(") != std::string::npos) replace_all(s, ")or(", "),(");  // "(1,2)or(2,1)"
  if (s.find("p") != std::string::npos) {
    for (const char* word : {" percent", "percent", " pct"}) replace_all(s, word, "%");
  }
  collapse_commas(s);
  base_subscripts(s);
  // trim, drop a trailing period
  size_t b = 0;
  while (b < s.size() && is_space(s[b])) ++b;
  s.erase(0, b);
  while (!s.empty() && (is_space(s.back()) || s.back() == '.')) s.pop_back();
  if (non_ascii) strip_trailing_non_ascii(s);
  strip_ordinal(s);
  strip_units(s);
  while (!s.empty() && is_space(s.back())) s.pop_back();
  return s;
}

}  // namespace aha::rewards::detail
