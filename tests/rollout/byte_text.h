// A byte-level "tokenizer" for engine tests: token id = the byte's value (the test models have a
// vocabulary of 128).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aha::rollout::testing {

inline std::string text_of(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += static_cast<char>(id);
  return s;
}

inline std::vector<int32_t> ids_of(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace aha::rollout::testing
