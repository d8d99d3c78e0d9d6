// JSONL input for commands: a file path or "-" for stdin, one JSON object per non-empty line.
#pragma once

#include <fstream>
#include <functional>
#include <iostream>
#include <string>

#include "aha/core/config.h"
#include "aha/core/error.h"

namespace aha::cli {

// Calls on_line(json, line_number) for each non-empty line; a line that is not a JSON object
// throws aha::Error naming the file and line.
inline void for_each_jsonl(const std::string& path,
                           const std::function<void(const Json&, int64_t)>& on_line) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) fail("cannot open ", path);
    in = &file;
  }
  std::string line;
  int64_t lineno = 0;
  while (std::getline(*in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = parse_json(line, path + ":" + std::to_string(lineno));
    if (!j.is_object()) fail(path, ":", lineno, ": expected a JSON object");
    on_line(j, lineno);
  }
}

}  // namespace aha::cli
