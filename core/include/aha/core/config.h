// JSON configuration: loading files, `--set a.b=c` overrides, and a strict reader that turns
// unknown or mistyped keys into errors instead of silently ignoring them.
#pragma once

#include <nlohmann/json.hpp>

#include "aha/core/error.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace aha {

using Json = nlohmann::json;

// Untrusted JSON is parsed only through these: nesting deeper than kMaxJsonDepth is refused
// before nlohmann builds it, because copying, dumping or comparing a value recurses once per
// level and 100k levels overflow the stack (of a TBB worker first).
constexpr int kMaxJsonDepth = 512;
// Nullopt and a short reason (no echo of the text) when `text` is not JSON or nests too deep.
std::optional<Json> try_parse_json(std::string_view text, std::string* error = nullptr);
// As try_parse_json, but throws aha::Error "<what>: <reason>".
Json parse_json(std::string_view text, const std::string& what);
// At most `max_chars` of a value's JSON text, for error messages that must not echo megabytes.
std::string json_excerpt(const Json& value, size_t max_chars = 80);

// " (did you mean 'x'?)" for the candidate closest to `word` by edit distance, or "" when none
// is close: appended to "unknown key/name" errors.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

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
  auto wrong = [&](const char* want) {
    return Error(where_ + "." + key + ": expected " + want + ", got " + json_excerpt(value));
  };
  // nlohmann converts true to 1, 2.7 to 2 and 4294967295 to -1 without a word: not here.
  if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) throw wrong("true or false");
  } else if constexpr (std::is_integral_v<T>) {
    if (value.is_number_float()) {
      const double d = value.get<double>();
      if (!(d == std::floor(d)) || std::abs(d) > 9.0e15) throw wrong("an integer");
      if (d < double(std::numeric_limits<T>::lowest()) || d > double(std::numeric_limits<T>::max())) {
        throw wrong("an integer in range");
      }
      return static_cast<T>(d);
    }
    if (!value.is_number_integer()) throw wrong("an integer");
    const bool fits = value.is_number_unsigned()
                          ? value.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                          : value.get<int64_t>() >= int64_t(std::numeric_limits<T>::lowest()) &&
                                (value.get<int64_t>() < 0 ||
                                 uint64_t(value.get<int64_t>()) <= uint64_t(std::numeric_limits<T>::max()));
    if (!fits) {
      throw wrong(("an integer from " + std::to_string(std::numeric_limits<T>::lowest()) + " to " +
                   std::to_string(std::numeric_limits<T>::max())).c_str());
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!value.is_number()) throw wrong("a number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) throw wrong("a string");
  }
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(where_ + "." + key + ": wrong type (" + json_excerpt(value) + ")");
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
