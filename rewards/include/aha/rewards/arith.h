// Exact integer arithmetic over text: the evaluator behind the "countdown" and "equations"
// rewards, with rational results so 7 / 2 * 2 is exactly 7.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aha::rewards {

struct Rational {
  __int128 num = 0, den = 1;  // reduced, den > 0
};

// Evaluates integers with + - * / (also × ÷), parentheses and unary minus. nullopt for
// anything else, division by zero, or magnitudes beyond 2^100. `numbers` (optional) receives
// every literal in order.
std::optional<Rational> eval_arith(std::string_view expr, std::vector<int64_t>* numbers = nullptr);

// An `expr = n` found in text: the expression, the claimed integer, and where it ends.
struct Equation {
  std::string lhs, rhs;
  size_t end = 0;        // byte offset just after the claimed value
  bool valid = false;    // lhs evaluates
  bool correct = false;  // and equals rhs
};
// Every equation whose left side holds an operator, in order of appearance.
std::vector<Equation> find_equations(std::string_view text);

}  // namespace aha::rewards
