// Private to the math checker: the tokenizer of normalised answers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "math_internal.h"

namespace aha::rewards::detail {

enum class T : uint8_t { kEnd, kNum, kVar, kCmd, kSym };

struct Token {
  T type = T::kEnd;
  std::string text;  // number digits, variable name, command name (no backslash), symbol
  bool space_before = false;
};

// Whether name is a function the parser applies (\sin, \ln, ...).
bool is_function(std::string_view name);

// Splits s into tokens ending with a kEnd token; false when the budget runs out.
bool tokenize(std::string_view s, std::vector<Token>& out, Budget& budget);

}  // namespace aha::rewards::detail
