// Shared-library reward plugins: dlopen + the versioned C ABI of plugin_abi.h.
#include <dlfcn.h>

#include <cmath>

#include "aha/rewards/plugin.h"
#include "aha/rewards/plugin_abi.h"
#include "builtin.h"

namespace aha::rewards {
namespace {

// Owns a dlopen handle.
class Library {
 public:
  explicit Library(const std::string& path) : handle_(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    if (handle_ == nullptr) {
      const char* why = dlerror();
      fail("[plugin] cannot load '", path, "': ", why != nullptr ? why : "unknown error");
    }
  }
  ~Library() { dlclose(handle_); }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  void* symbol(const char* name) const { return dlsym(handle_, name); }

 private:
  void* handle_;
};

class PluginReward : public RewardFunction {
 public:
  PluginReward(const std::string& path, const Json& params) : lib_(path) {
    auto entry = reinterpret_cast<AhaRewardPluginEntry>(lib_.symbol(AHA_REWARD_PLUGIN_ENTRY));
    if (entry == nullptr) {
      fail("[plugin] '", path, "' does not export ", AHA_REWARD_PLUGIN_ENTRY,
           " (see docs/rewards.md)");
    }
    table_ = entry(AHA_REWARD_ABI_VERSION);
    if (table_ == nullptr) {
      fail("[plugin] '", path, "' refuses reward ABI version ", AHA_REWARD_ABI_VERSION);
    }
    if (table_->abi_version != AHA_REWARD_ABI_VERSION ||
        table_->struct_size < sizeof(AhaRewardPlugin)) {
      fail("[plugin] '", path, "' speaks reward ABI version ", table_->abi_version,
           " (struct size ", table_->struct_size, "), this aha speaks ", AHA_REWARD_ABI_VERSION,
           " (struct size ", sizeof(AhaRewardPlugin), "): rebuild the plugin");
    }
    if (table_->create == nullptr || table_->destroy == nullptr || table_->score == nullptr) {
      fail("[plugin] '", path, "' has a null function in its table");
    }
    name_ = table_->name != nullptr ? table_->name : path;
    char err[1024] = {0};
    instance_ = table_->create(params.dump().c_str(), err, sizeof(err));
    if (instance_ == nullptr) {
      err[sizeof(err) - 1] = 0;
      fail("[plugin] ", name_, ": create failed: ", err[0] != 0 ? err : "no message");
    }
  }
  ~PluginReward() override { table_->destroy(instance_); }

  RewardResult score(const Sample& s) const override {
    std::string request = sample_to_json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
    std::vector<char> details(16384, 0);
    double score = 0.0;
    int rc = table_->score(instance_, request.c_str(), request.size(), &score, details.data(),
                           details.size());
    details.back() = 0;
    std::string text(details.data());
    if (rc != 0) {
      return detail::unjudged(name_ + ": " + (text.empty() ? "score failed" : text));
    }
    RewardResult r{score, Json::object()};
    if (!text.empty()) {
      Json parsed = try_parse_json(text).value_or(Json());
      if (parsed.is_object()) {
        r.details = std::move(parsed);
      } else {
        r.details["plugin_details"] = text;
      }
    }
    return r;
  }

 private:
  Library lib_;  // declared first: destroyed after the instance
  const AhaRewardPlugin* table_ = nullptr;
  void* instance_ = nullptr;
  std::string name_;
};

}  // namespace

Json sample_to_json(const Sample& s) {
  Json j = Json::object();
  j["prompt"] = std::string(s.prompt);
  j["completion"] = std::string(s.completion);
  j["row"] = s.row != nullptr ? *s.row : Json::object();
  j["n_completion_tokens"] = s.n_completion_tokens;
  if (s.turns != nullptr) {
    Json turns = Json::array();
    for (const Turn& t : *s.turns) {
      Json u = {{"role", t.role}, {"text", t.text}};
      if (t.role == "tool") {
        u["tool"] = t.tool;
        u["status"] = t.status;
        if (std::isfinite(t.reward)) u["reward"] = t.reward;
      }
      turns.push_back(std::move(u));
    }
    j["turns"] = std::move(turns);
  }
  return j;
}

std::unique_ptr<RewardFunction> load_plugin_reward(const std::string& path, const Json& params) {
  return std::make_unique<PluginReward>(path, params);
}

namespace detail {
std::unique_ptr<RewardFunction> make_plugin_reward(const Json& p) {
  StrictReader r(p, "plugin");
  auto path = r.require<std::string>("path");
  Json params = r.has("params") ? r.child("params") : Json::object();
  r.finish();
  return load_plugin_reward(path, params);
}
}  // namespace detail

}  // namespace aha::rewards
