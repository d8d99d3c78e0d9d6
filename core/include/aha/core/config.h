// JSON configuration: loading files, `--set a.b=c` overrides, and a strict reader that turns
// unknown or mistyped keys into errors instead of silently ignoring them.
#pragma once

#include <nlohmann/json.hpp>

#include "aha/core/error.h"

#include <set>
#include <string>
#include <vector>

namespace aha {

using Json = nlohmann::json;

// Parses a JSON file; throws aha::Error naming the file and the parse position.
Json load_json_file(const std::string& path);

// Writes JSON atomically (temp file + rename), pretty-printed.
void save_json_file(const std::string& path, const Json& value);

// Applies `a.b.c=value` overrides in order. The value is parsed as JSON when it parses
// (numbers, true/false/null, arrays, objects), else taken as a string. Intermediate objects are
// created; overriding inside a non-object is an error.
void apply_overrides(Json& config, const std::vector<std::string>& sets);

// Reads one JSON object key by key, remembering which keys were read, so that finish() can
// reject the keys nobody asked for. `where` names the object in error messages ("grpo").
class StrictReader {
 public:
  StrictReader(const Json& object, std::string where);

  bool has(const std::string& key) const;
  template <typename T>
  T get(const std::string& key, const T& fallback);
  template <typename T>
  T require(const std::string& key);
  // The sub-object `key` (an empty object when absent), for a nested StrictReader.
  const Json& child(const std::string& key);
  // Throws on the first key that was never read.
  void finish() const;
  const std::string& where() const { return where_; }

 private:
  template <typename T>
  T convert(const std::string& key, const Json& value) const;

  Json object_;
  std::string where_;
  std::set<std::string> used_;
  static const Json kEmpty;
};

template <typename T>
T StrictReader::convert(const std::string& key, const Json& value) const {
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(where_ + "." + key + ": wrong type (" + value.dump() + ")");
  }
}

template <typename T>
T StrictReader::get(const std::string& key, const T& fallback) {
  used_.insert(key);
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return fallback;
  return convert<T>(key, *it);
}

template <typename T>
T StrictReader::require(const std::string& key) {
  used_.insert(key);
  auto it = object_.find(key);
  if (it == object_.end()) throw Error(where_ + "." + key + ": required key is missing");
  return convert<T>(key, *it);
}

}  // namespace aha
