// Tokenizer of normalised answers: numbers (decimal, scientific), one-letter variables with
// subscripts, Euler's e, commands and symbols, with whitespace remembered for mixed numbers.
#include <cctype>
#include <string>

#include "math_tokens.h"

namespace aha::rewards::detail {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

constexpr const char* kFunctions[] = {"sin",    "cos",    "tan",  "sec",  "csc",  "cot",
                                      "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
                                      "ln",     "log",    "exp",    "gcd",  "lcm"};

}  // namespace

bool is_function(std::string_view name) {
  for (const char* f : kFunctions) {
    if (name == f) return true;
  }
  return false;
}

namespace {

// Reads a subscript after '_' (braced or one character) into name.
size_t read_subscript(std::string_view s, size_t i, std::string& name) {
  if (i >= s.size()) return i;
  name += '_';
  if (s[i] == '{') {
    size_t j = i + 1;
    while (j < s.size() && s[j] != '}') name += s[j++];
    return j < s.size() ? j + 1 : j;
  }
  name += s[i];
  return i + 1;
}

// The end of the number starting at s[i]: digits, one decimal point, an exponent (1.5e-3).
size_t number_end(std::string_view s, size_t i) {
  size_t j = i;
  bool dot = false;
  while (j < s.size() &&
         (is_digit(s[j]) || (s[j] == '.' && !dot && j + 1 < s.size() && is_digit(s[j + 1])))) {
    dot |= s[j] == '.';
    ++j;
  }
  if (j + 1 < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    size_t k = j + 1;
    if (k < s.size() && (s[k] == '-' || s[k] == '+')) ++k;
    if (k < s.size() && is_digit(s[k])) {
      while (k < s.size() && is_digit(s[k])) ++k;
      j = k;
    }
  }
  return j;
}

}  // namespace

bool tokenize(std::string_view s, std::vector<Token>& out, Budget& budget) {
  bool space = false;
  for (size_t i = 0; i < s.size();) {
    if (!budget.step()) return false;
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      ++i;
      continue;
    }
    Token t;
    t.space_before = space;
    space = false;
    if (is_digit(c) || (c == '.' && i + 1 < s.size() && is_digit(s[i + 1]))) {
      size_t j = number_end(s, i);
      t.type = T::kNum;
      t.text.assign(s.substr(i, j - i));
      i = j;
    } else if (is_alpha(c)) {
      size_t j = i;
      while (j < s.size() && is_alpha(s[j])) ++j;
      std::string_view word = s.substr(i, j - i);
      if (is_function(word) || word == "sqrt" || word == "pi" || word == "infty" ||
          word == "inf") {
        t.type = T::kCmd;
        t.text.assign(word);
        i = j;
      } else if (c == 'e' && (i + 1 == s.size() || !is_alpha(s[i + 1])) &&
                 (i + 1 >= s.size() || s[i + 1] != '_')) {
        t.type = T::kCmd;  // a lone "e" is Euler's number
        t.text = "e";
        i = i + 1;
      } else {
        t.type = T::kVar;  // each letter is its own variable: "xy" = x*y
        t.text.assign(1, c);
        i = i + 1;
        if (i < s.size() && s[i] == '_' && (i + 1 == s.size() || s[i + 1] != '\\')) {
          i = read_subscript(s, i + 1, t.text);
        }
      }
    } else if (c == '\\') {
      size_t j = i + 1;
      while (j < s.size() && is_alpha(s[j])) ++j;
      if (j == i + 1) {  // \{ \} \\ and friends
        if (i + 1 >= s.size()) return false;
        t.type = T::kSym;
        t.text.assign(s.substr(i, 2));
        i += 2;
      } else {
        t.type = T::kCmd;
        t.text.assign(s.substr(i + 1, j - i - 1));
        i = j;
      }
    } else {
      t.type = T::kSym;
      t.text.assign(1, c);
      if ((c == '<' || c == '>' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') {
        t.text += '=';
        ++i;
      }
      ++i;
    }
    out.push_back(std::move(t));
  }
  out.push_back(Token{});
  return true;
}

}  // namespace aha::rewards::detail
