// JSON config files, `--set` overrides and the strict key reader.
#include "aha/core/config.h"

#include "aha/core/fileio.h"

namespace aha {

const Json StrictReader::kEmpty = Json::object();

Json load_json_file(const std::string& path) {
  std::string text = read_file(path);
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("[load_json_file] ", path, " is not valid JSON: ", e.what());
  }
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
    Json value;
    try {
      value = Json::parse(text);
    } catch (const nlohmann::json::parse_error&) {
      value = text;
    }
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
  if (!object_.is_object()) fail(where_, ": expected a JSON object, got ", object_.dump());
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
    if (!used_.count(it.key())) fail(where_, ": unknown key '", it.key(), "'");
  }
}

}  // namespace aha
