// JSON config files, `--set` overrides and the strict key reader.
#include "aha/core/config.h"

#include <algorithm>

#include "aha/core/fileio.h"

namespace aha {

const Json StrictReader::kEmpty = Json::object();

namespace {

// The deepest nesting of arrays/objects in `text`, counted outside strings; stops early once
// above `limit`. Linear, no recursion.
int nesting_depth(std::string_view text, int limit) {
  int depth = 0, worst = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      worst = std::max(worst, ++depth);
      if (worst > limit) return worst;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return worst;
}

}  // namespace

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  // Levenshtein distance, two rows; words here are short keys and names.
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  if (word.size() > 64) return "";
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const size_t d = distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::optional<Json> try_parse_json(std::string_view text, std::string* error) {
  if (nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth) {
    if (error != nullptr) *error = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return std::nullopt;
  }
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message is "[json.exception.parse_error.101] parse error at line 1, ...":
    // keep the part a user can act on.
    std::string msg = e.what();
    const size_t at = msg.find("] ");
    if (at != std::string::npos) msg = msg.substr(at + 2);
    if (msg.size() > 160) msg = msg.substr(0, 160) + "...";
    if (error != nullptr) *error = "not valid JSON: " + msg;
    return std::nullopt;
  }
}

Json parse_json(std::string_view text, const std::string& what) {
  std::string error;
  std::optional<Json> j = try_parse_json(text, &error);
  if (!j) fail(what, ": ", error);
  return std::move(*j);
}

std::string json_excerpt(const Json& value, size_t max_chars) {
  std::string s = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > max_chars) s = s.substr(0, max_chars) + "... (" + std::to_string(s.size()) + " chars)";
  return s;
}

Json load_json_file(const std::string& path) {
  return parse_json(read_file(path), "[load_json_file] " + path);
}

void save_json_file(const std::string& path, const Json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

void apply_overrides(Json& config, const std::vector<std::string>& sets) {
  for (const std::string& set : sets) {
    size_t eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      fail("--set expects key.path=value, got '", set, "'");
    }
    std::string path = set.substr(0, eq);
    std::string text = set.substr(eq + 1);
    Json value = try_parse_json(text).value_or(Json(text));
    Json* node = &config;
    size_t start = 0;
    while (true) {
      size_t dot = path.find('.', start);
      std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
      if (key.empty()) fail("--set: empty key in '", path, "'");
      if (node->is_null()) *node = Json::object();
      if (!node->is_object()) fail("--set ", path, ": '", key, "' is inside a non-object");
      if (dot == std::string::npos) {
        (*node)[key] = value;
        break;
      }
      node = &(*node)[key];
      start = dot + 1;
    }
  }
}

StrictReader::StrictReader(const Json& object, std::string where)
    : object_(object.is_null() ? kEmpty : object), where_(std::move(where)) {
  if (!object_.is_object()) fail(where_, ": expected a JSON object, got ", json_excerpt(object_));
}

bool StrictReader::has(const std::string& key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

const Json& StrictReader::child(const std::string& key) {
  used_.insert(key);
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return kEmpty;
  if (!it->is_object()) fail(where_, ".", key, ": expected an object");
  return *it;
}

void StrictReader::finish() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (!used_.count(it.key())) {
      fail(where_, ": unknown key '", it.key(), "'",
           did_you_mean(it.key(), std::vector<std::string>(used_.begin(), used_.end())));
    }
  }
}

}  // namespace aha
