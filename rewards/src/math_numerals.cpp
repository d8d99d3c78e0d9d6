// How numbers are written, for the math checker's normalisation: thousands separators in their
// several spellings ("1,234", "1 234", "11,\! 111", "1.000.000"), the continental decimal comma
// ("1.000,5"), repeating decimals ("0.1\overline{6}") and the spellings of "modulo".
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "math_internal.h"

namespace aha::rewards::detail {
namespace {

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// Whether the number at s[i] opens a bracket holding "a,bcd" and nothing else: "(12,102)".
bool pair_in_brackets(const std::string& s, size_t i) {
  if (i == 0 || (s[i - 1] != '(' && s[i - 1] != '[')) return false;
  size_t j = i;
  while (j < s.size() && is_digit(s[j])) ++j;
  if (j + 4 >= s.size() || s[j] != ',') return false;
  for (size_t k = j + 1; k < j + 4; ++k) {
    if (!is_digit(s[k])) return false;
  }
  return s[j + 4] == ')' || s[j + 4] == ']';
}

// The end of a number written the continental way, dots between groups of three and a decimal
// comma ("1.000,5", "12.345.678,90"), or several dot groups ("1.000.000"), whose first digits
// are s[i, j); 0 when it is not one. One dot group alone ("1.000") stays a decimal point.
size_t european_end(const std::string& s, size_t i, size_t j) {
  if (j - i > 3 || s[i] == '0') return 0;
  auto group = [&](size_t k) {
    return k + 4 <= s.size() && s[k] == '.' && is_digit(s[k + 1]) && is_digit(s[k + 2]) &&
           is_digit(s[k + 3]) && (k + 4 == s.size() || !is_digit(s[k + 4]));
  };
  int groups = 0;
  while (group(j)) {
    j += 4;
    ++groups;
  }
  if (groups == 0) return 0;
  if (j + 1 < s.size() && s[j] == ',' && is_digit(s[j + 1])) {
    size_t e = j + 1;
    while (e < s.size() && is_digit(s[e])) ++e;
    if (e == s.size() || (s[e] != '.' && s[e] != ',')) return e;
  }
  return groups >= 2 && (j == s.size() || (s[j] != '.' && s[j] != ',')) ? j : 0;
}

}  // namespace

// "1,234,567" -> "1234567" and "1 234 567" -> "1234567" (groups of exactly three digits).
// MATH writes "11,\\! 111" (a thin space after the comma): the caller has made that "11,111".
std::string join_thousands(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    bool starts_number = is_digit(s[i]) && (i == 0 || (!is_digit(s[i - 1]) && s[i - 1] != '.'));
    if (!starts_number) {
      out += s[i++];
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_digit(s[j])) ++j;
    std::string number(s, i, j - i);
    if (size_t e = european_end(s, i, j); e != 0) {  // "1.000,5" -> "1000.5"
      for (size_t k = j; k < e; ++k) {
        if (s[k] == ',') number += '.';
        else if (s[k] != '.') number += s[k];
      }
      out += number;
      i = e;
      continue;
    }
    // a group of three never follows a lone 0: "0,125" is a decimal comma; "(12,102)" is a pair
    if (j - i <= 3 && number != "0" && !pair_in_brackets(s, i)) {
      while (j + 4 <= s.size() && (s[j] == ',' || s[j] == ' ') && is_digit(s[j + 1]) &&
             is_digit(s[j + 2]) && is_digit(s[j + 3]) &&
             (j + 4 == s.size() || (!is_digit(s[j + 4]) && s[j + 4] != '/' &&
                                    !(s[j] == ' ' && s[j + 4] == '.')))) {
        number.append(s, j + 1, 3);
        j += 4;
      }
    }
    out += number;
    i = j;
  }
  return out;
}

// "0.1\overline{6}" -> "\frac{1}{6}": a repeating decimal as an exact fraction.
void repeating_decimals(std::string& s) {
  for (size_t at = s.find("\\overline{"); at != std::string::npos;
       at = s.find("\\overline{", at + 1)) {
    size_t close = s.find('}', at);
    if (close == std::string::npos) return;
    std::string rep = s.substr(at + 10, close - at - 10);
    size_t b = at;
    while (b > 0 && (is_digit(s[b - 1]) || s[b - 1] == '.')) --b;
    std::string head = s.substr(b, at - b);
    size_t dot = head.find('.');
    if (rep.empty() || rep.size() > 9 || rep.find_first_not_of("0123456789") != std::string::npos ||
        dot == std::string::npos || head.size() + rep.size() > 17) {  // fits a long long
      continue;
    }
    std::string int_part = head.substr(0, dot), frac = head.substr(dot + 1);
    if (frac.find('.') != std::string::npos) continue;
    // x = (int frac rep - int frac) / (10^|frac| (10^|rep| - 1))
    long long all = std::stoll("0" + int_part + frac + rep);
    long long head_v = std::stoll("0" + int_part + frac);
    long long den = 1;
    for (size_t k = 0; k < rep.size(); ++k) den *= 10;
    den -= 1;
    for (size_t k = 0; k < frac.size(); ++k) den *= 10;
    std::string out = "\\frac{" + std::to_string(all - head_v) + "}{" + std::to_string(den) + "}";
    s.replace(b, close + 1 - b, out);
    at = b;
  }
}

// ",\!" between digits is MATH's thousands separator, whatever the group sizes
// ("56,\!01,\!78" is 560178); elsewhere it is a comma.
void thin_separators(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, ",\\!") == 0) {
      size_t j = i + 3;
      while (j < s.size() && s[j] == ' ') ++j;
      bool digits = !out.empty() && std::isdigit(static_cast<unsigned char>(out.back())) &&
                    j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]));
      if (!digits) out += ',';
      i = j - 1;
      continue;
    }
    out += s[i];
  }
  s = std::move(out);
}

namespace {

bool at(std::string_view s, size_t i, std::string_view word) {
  return s.compare(i, word.size(), word) == 0;
}

size_t skip_blank(std::string_view s, size_t i) {
  while (i < s.size()) {
    if (s[i] == ' ') {
      ++i;
    } else if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == ' ' || s[i + 1] == ',' ||
                                                    s[i + 1] == ';' || s[i + 1] == '!')) {
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

// The end of a "mod" written at s[i] (\bmod, \mod, \text{ mod }, \mathrm{mod},
// \operatorname{mod}, a bare "mod"), or npos.
size_t mod_word_end(std::string_view s, size_t i) {
  for (std::string_view w : {"\\bmod", "\\mod", "mod"}) {
    size_t e = i + w.size();
    if (at(s, i, w) && (e == s.size() || !std::isalpha(static_cast<unsigned char>(s[e])))) {
      return e;
    }
  }
  for (std::string_view w : {"\\text{", "\\textrm{", "\\mathrm{", "\\operatorname{"}) {
    if (!at(s, i, w)) continue;
    size_t k = skip_blank(s, i + w.size());
    if (!at(s, k, "mod")) return std::string_view::npos;
    k = skip_blank(s, k + 3);
    return k < s.size() && s[k] == '}' ? k + 1 : std::string_view::npos;
  }
  return std::string_view::npos;
}

// The ')' closing the '(' at s[open], or npos.
size_t closing_paren(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t k = open; k < s.size(); ++k) {
    if (s[k] == '(') ++depth;
    if (s[k] == ')' && --depth == 0) return k;
  }
  return std::string_view::npos;
}

}  // namespace

void congruences(std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    size_t open = at(s, i, "\\left(") ? i + 5 : i;
    if (s[open] == '(') {
      size_t w = skip_blank(s, open + 1);
      size_t e = mod_word_end(s, w);
      size_t close = e == std::string::npos ? e : closing_paren(s, open);
      if (close != std::string::npos) {  // "(\bmod 7)", "(\text{mod } 7)": a congruence
        size_t end = close + 1;
        if (close >= 6 && at(s, close - 6, "\\right")) close -= 6;
        out += " \\pmod{" + s.substr(e, close - e) + "}";
        i = end;
        continue;
      }
    }
    if (s[i] == '\\' && s[i + 1] != 'b' && s[i + 1] != 'p' && !at(s, i, "\\mod")) {
      size_t e = mod_word_end(s, i);  // "\text{ mod }" between two values
      if (e != std::string::npos) {
        out += " \\bmod ";
        i = e;
        continue;
      }
    }
    out += s[i++];
  }
  s = std::move(out);
}

Node number_literal(const std::string& text) {
  Node n;
  n.kind = K::kNum;
  size_t e = text.find_first_of("eE");
  std::string mant = text.substr(0, e);
  int64_t exp10 = 0;
  n.approx = text.find_first_of(".eE") != std::string::npos;
  if (e != std::string::npos) {  // clamped: "1e99999999999999999999" must not throw
    size_t k = e + 1;
    bool negative = k < text.size() && text[k] == '-';
    if (k < text.size() && (text[k] == '-' || text[k] == '+')) ++k;
    for (; k < text.size() && exp10 < 100000; ++k) exp10 = exp10 * 10 + (text[k] - '0');
    if (negative) exp10 = -exp10;
  }
  size_t dot = mant.find('.');
  std::string digits = mant;
  if (dot != std::string::npos) {
    if (e == std::string::npos) n.decimals = static_cast<int>(mant.size() - dot - 1);
    digits.erase(dot, 1);
    exp10 -= static_cast<int64_t>(mant.size() - dot - 1);
  }
  size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? "0" : digits.substr(nz);
  bool ok = digits.size() <= 36 && exp10 > -30 && exp10 < 30;
  if (ok) {
    i128 v = 0;
    for (char c : digits) v = v * 10 + (c - '0');
    i128 p = 1;
    for (int64_t k = 0; k < (exp10 < 0 ? -exp10 : exp10); ++k) p *= 10;
    Q big;
    ok = exp10 >= 0 ? q_make(v, 1, big) && q_mul(big, Q{p, 1}, n.q) : q_make(v, p, n.q);
  }
  if (!ok) {
    n.exact = false;
    n.d = std::strtod(text.c_str(), nullptr);
  }
  return n;
}

}  // namespace aha::rewards::detail
