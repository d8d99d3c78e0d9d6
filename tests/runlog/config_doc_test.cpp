// docs/config.md against the code: every key the config parsers accept (StrictReader get/require
// calls, key lists) must be named in the reference, so the docs cannot silently drift. The test
// lives with runlog because it needs no module of its own, only the source tree.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "aha/core/fileio.h"

namespace aha {
namespace {

// Keys read by the parser sources: r.get<T>("key", ...), r.require<T>("key"), and the string
// lists of `for (const char* k : {"a", "b"})` and `return {"a", "b"}` (data_keys()).
std::set<std::string> parser_keys(const std::string& source) {
  std::set<std::string> keys;
  static const std::regex call(R"((?:get|require)<[^;()]*>\(\s*\"([A-Za-z0-9_]+)\")");
  static const std::regex list(R"((?:for \(const char\* \w+ : |return )\{(\"[^}]*)\})");
  static const std::regex quoted(R"(\"([A-Za-z0-9_]+)\")");
  for (std::sregex_iterator it(source.begin(), source.end(), call), end; it != end; ++it) {
    keys.insert((*it)[1]);
  }
  for (std::sregex_iterator it(source.begin(), source.end(), list), end; it != end; ++it) {
    const std::string inner = (*it)[1];
    for (std::sregex_iterator q(inner.begin(), inner.end(), quoted); q != end; ++q) {
      keys.insert((*q)[1]);
    }
  }
  return keys;
}

TEST(ConfigDoc, EveryParsedKeyIsDocumented) {
  const std::string src = AHA_SOURCE_DIR;
  const std::string doc = read_file(src + "/docs/config.md");
  size_t total = 0;
  for (const char* file :
       {"grpo/src/trainer_config.cpp", "grpo/src/pretrain.cpp", "datasets/src/source.cpp",
        "rollout/src/sampling.cpp", "policy/src/optimizer.cpp", "distill/src/sample.cpp",
        "distill/src/train_config.cpp", "distill/src/common.cpp"}) {
    const std::set<std::string> keys = parser_keys(read_file(src + "/" + file));
    EXPECT_FALSE(keys.empty()) << file << ": no keys found (did the parser change shape?)";
    for (const std::string& key : keys) {
      ++total;
      // Named as `key` or as the last part of a dotted `a.key`.
      const std::regex named("[`.]" + key + "`");
      EXPECT_TRUE(std::regex_search(doc, named))
          << "docs/config.md does not mention the key '" << key << "' read in " << file;
    }
  }
  EXPECT_GT(total, 40u);
}

}  // namespace
}  // namespace aha
