// Reading the benchmarks' JSON lines in the command-line tests (fields and finiteness only:
// no test asserts a timing).
#pragma once

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "aha/core/config.h"

namespace aha::testing {

inline bool finite_number(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_number() && std::isfinite(j[key].get<double>());
}

inline std::vector<Json> json_lines(const std::string& out) {
  std::vector<Json> lines;
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) lines.push_back(Json::parse(line));
  }
  return lines;
}

}  // namespace aha::testing
