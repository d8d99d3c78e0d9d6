// math_equal: the text-level decisions (identical spellings, word answers, decimal commas,
// prose that is no answer) before parsing both sides and comparing the trees, and the
// variable renaming of the non-strict mode.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "math_internal.h"
#include "math_text.h"

namespace aha::rewards {
namespace detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string lower_key(std::string_view s) {
  std::string key;
  for (char c : s) {
    if (c == ' ' || c == '(' || c == ')' || c == '.' || c == '{' || c == '}') continue;
    key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return key;
}

bool has_word(std::string_view s) {
  int run = 0;
  for (char c : s) {
    run = std::isalpha(static_cast<unsigned char>(c)) ? run + 1 : 0;
    if (run >= 3) return true;
  }
  return false;
}

bool all_alpha(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isalpha(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Spaces removed, except between two digits ("3 4" is not "34").
std::string without_spaces(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ' ') {
      size_t j = i;
      while (j < s.size() && s[j] == ' ') ++j;
      if (!out.empty() && j < s.size() && is_digit(out.back()) && is_digit(s[j])) out += ' ';
      i = j - 1;
      continue;
    }
    out += s[i];
  }
  return out;
}

// "1000,99" (one comma, no spaces, not a group of three) is a decimal comma when the other
// side is not a list.
void decimal_comma(std::string& s, const std::string& other) {
  if (other.find(',') != std::string::npos) return;
  size_t comma = s.find(',');
  if (comma == std::string::npos || s.find(',', comma + 1) != std::string::npos) return;
  size_t b = s[0] == '-' ? 1 : 0;
  if (comma == b || comma + 1 == s.size()) return;
  for (size_t i = b; i < s.size(); ++i) {
    if (i != comma && !is_digit(s[i])) return;
  }
  s[comma] = '.';
}

// "m\angle A = 30", "E[X] = 3.5": a left side the parser does not read, made of names only
// (no digit), labels the value on its right; nullopt otherwise.
std::optional<std::string> unread_label_value(const std::string& s) {
  auto [first, last] = top_level_eqs(s);
  if (first == std::string::npos || first != last) return std::nullopt;
  for (size_t i = 0; i < first; ++i) {
    if (is_digit(s[i])) return std::nullopt;
  }
  std::string_view rhs = trim(std::string_view(s).substr(first + 1));
  if (rhs.empty()) return std::nullopt;
  return std::string(rhs);
}

// "p=5,q=2;p=7,q=2" -> "(5,2),(7,2)": solution groups separated by ';', each assigning the
// same names in the same order, are tuples of their values; other text is left alone.
void assignment_groups(std::string& s) {
  if (s.find(';') == std::string::npos || s.find('=') == std::string::npos) return;
  std::vector<std::string> names;
  std::string out;
  size_t start = 0;
  for (int group = 0; start <= s.size() && group < 64; ++group) {
    size_t end = std::min(s.find(';', start), s.size());
    std::string_view g = std::string_view(s).substr(start, end - start);
    std::string tuple;
    size_t k = 0, at = 0;
    while (at <= g.size()) {
      size_t comma = std::min(g.find(',', at), g.size());
      std::string_view item = trim(g.substr(at, comma - at));
      size_t eq = item.find('=');
      if (eq == std::string_view::npos || item.find('=', eq + 1) != std::string_view::npos) return;
      std::string name(trim(item.substr(0, eq)));
      if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0]))) return;
      if (group == 0) names.push_back(name);
      if (k >= names.size() || names[k] != name) return;
      tuple += (k++ ? "," : "") + std::string(trim(item.substr(eq + 1)));
      at = comma + 1;
    }
    if (k != names.size() || k < 2) return;
    out += (group ? ",(" : "(") + tuple + ")";
    start = end + 1;
  }
  if (start <= s.size()) return;  // more groups than read: leave the text as it is
  s = out;
}

// Parses an answer, else the value of an unread label.
bool parse_answer(const std::string& s, Tree& t, Budget& budget) {
  if (parse(s, t, budget)) return true;
  auto value = budget.ok() ? unread_label_value(s) : std::nullopt;
  return value && parse(*value, t, budget);
}

// The variables of a tree (kVar names), in order of appearance.
std::vector<std::string> variables(const Tree& t) {
  std::vector<std::string> vars;
  for (const Node& n : t.nodes) {
    if (n.kind == K::kVar && std::find(vars.begin(), vars.end(), n.name) == vars.end()) {
      vars.push_back(n.name);
    }
  }
  return vars;
}

// Non-strict mode: the prediction with its variables renamed to the gold's ("f(y) = y^2" vs
// "f(x) = x^2"), every pairing tried for up to three variables.
MathVerdict renamed(Tree pred, const Tree& gold, const MathOptions& o, Budget& budget) {
  std::vector<std::string> pv = variables(pred), gv = variables(gold);
  if (pv.empty() || pv.size() != gv.size() || pv.size() > 3) return MathVerdict::kNotEqual;
  std::vector<std::string> sorted_p = pv, sorted_g = gv;
  std::sort(sorted_p.begin(), sorted_p.end());
  std::sort(sorted_g.begin(), sorted_g.end());
  if (sorted_p == sorted_g) return MathVerdict::kNotEqual;  // already compared as they are
  std::vector<int> perm(gv.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(i);
  std::vector<std::string> original(pred.nodes.size());
  for (size_t i = 0; i < pred.nodes.size(); ++i) original[i] = pred.nodes[i].name;
  do {
    for (size_t i = 0; i < pred.nodes.size(); ++i) {
      Node& n = pred.nodes[i];
      if (n.kind != K::kVar) continue;
      size_t k = std::find(pv.begin(), pv.end(), original[i]) - pv.begin();
      n.name = gv[perm[k]];
    }
    if (compare_trees(pred, gold, o, budget) == MathVerdict::kEqual) return MathVerdict::kEqual;
  } while (std::next_permutation(perm.begin(), perm.end()) && budget.ok());
  return MathVerdict::kNotEqual;
}

}  // namespace
}  // namespace detail

std::string normalize_answer(std::string_view answer) { return detail::normalize(answer); }

MathVerdict math_equal(std::string_view predicted, std::string_view gold,
                       const MathOptions& options) {
  using namespace detail;
  if (predicted.size() > static_cast<size_t>(options.max_chars) ||
      gold.size() > static_cast<size_t>(options.max_chars)) {
    return MathVerdict::kUnparsable;
  }
  std::string p = normalize(predicted);
  std::string g = normalize(gold);
  if (p.empty() || g.empty()) return MathVerdict::kUnparsable;
  if (without_spaces(p) == without_spaces(g)) return MathVerdict::kEqual;
  // word answers ("Monday", "(A) yes"): case-insensitive text comparison
  std::string kp = lower_key(p), kg = lower_key(g);
  if (all_alpha(kp) && all_alpha(kg) && (has_word(p) || has_word(g) || kp == kg)) {
    return kp == kg ? MathVerdict::kEqual : MathVerdict::kNotEqual;
  }
  // prose is not an answer: another candidate of the completion may be
  if (has_prose(p) || has_prose(g)) return MathVerdict::kUnparsable;
  decimal_comma(p, g);
  decimal_comma(g, p);
  // only against values: two sides both written as assignments compare as equations
  const bool p_assigns = p.find('=') != std::string::npos;
  if (g.find('=') == std::string::npos) assignment_groups(p);
  if (!p_assigns) assignment_groups(g);
  Budget budget(200000, options.time_limit_ms);
  Tree tp, tg;
  if (!parse_answer(g, tg, budget) || !parse_answer(p, tp, budget)) return MathVerdict::kUnparsable;
  MathVerdict v = compare_trees(tp, tg, options, budget);
  if (v == MathVerdict::kNotEqual && !options.strict) v = renamed(std::move(tp), tg, options, budget);
  if (!budget.ok()) return MathVerdict::kUnparsable;
  return v;
}

}  // namespace aha::rewards
