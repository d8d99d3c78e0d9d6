// Example reward plugin: 1 when the completion contains every keyword of its params, scaled by
// an optional length limit. Shows the whole C ABI: versioned table, create with JSON params,
// thread-safe score with details, errors as messages (never exceptions across the boundary).
#include <aha/rewards/plugin_abi.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Keyword {
  std::vector<std::string> words;
  size_t max_chars = 0;  // 0: no limit
};

void copy_message(const std::string& msg, char* out, size_t size) {
  if (size == 0) return;
  std::snprintf(out, size, "%s", msg.c_str());
}

void* create(const char* params_json, char* err, size_t err_size) {
  try {
    auto p = nlohmann::json::parse(params_json);
    auto* k = new Keyword;
    for (const auto& w : p.value("keywords", nlohmann::json::array())) {
      k->words.push_back(w.get<std::string>());
    }
    k->max_chars = p.value("max_chars", size_t{0});
    if (k->words.empty()) {
      delete k;
      copy_message("params.keywords must be a non-empty list of strings", err, err_size);
      return nullptr;
    }
    return k;
  } catch (const std::exception& e) {
    copy_message(std::string("bad params: ") + e.what(), err, err_size);
    return nullptr;
  }
}

void destroy(void* instance) { delete static_cast<Keyword*>(instance); }

int score(void* instance, const char* sample_json, size_t sample_len, double* out,
          char* details, size_t details_size) {
  try {
    const auto* k = static_cast<const Keyword*>(instance);
    auto sample = nlohmann::json::parse(sample_json, sample_json + sample_len);
    const std::string completion = sample.at("completion").get<std::string>();
    if (sample["row"].value("plugin_fail", false)) {
      copy_message("row asked the plugin to fail", details, details_size);
      return 1;
    }
    int found = 0;
    for (const auto& w : k->words) found += completion.find(w) != std::string::npos;
    double s = found == static_cast<int>(k->words.size()) ? 1.0 : 0.0;
    if (k->max_chars > 0 && completion.size() > k->max_chars) s *= 0.5;
    *out = s;
    nlohmann::json d = {{"found", found}, {"keywords", k->words.size()}};
    copy_message(d.dump(), details, details_size);
    return 0;
  } catch (const std::exception& e) {
    copy_message(e.what(), details, details_size);
    return 1;
  }
}

const AhaRewardPlugin kPlugin = {AHA_REWARD_ABI_VERSION, sizeof(AhaRewardPlugin), "keyword",
                                 create, destroy, score};

}  // namespace

extern "C" __attribute__((visibility("default"))) const AhaRewardPlugin* aha_reward_plugin(
    uint32_t host_abi_version) {
  return host_abi_version == AHA_REWARD_ABI_VERSION ? &kPlugin : nullptr;
}
