// Tools and environments from shared libraries: dlopen + the versioned C ABI of
// tool_plugin_abi.h. A plugin runs in aha's process, so a call's time limit cannot kill it: a
// call past its limit ends the episode (fatal) and its thread is left to finish on its own,
// holding the library and the session alive; a plugin you do not trust belongs in a command
// tool (its own process group, killed with the episode).
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <thread>

#include "aha/core/error.h"
#include "aha/tools/tool_plugin_abi.h"
#include "aha/tools/tools.h"

namespace aha::tools {

namespace {

using rollout::ToolResult;
using rollout::ToolStatus;

constexpr size_t kOutputBytes = size_t{1} << 20;

// The library, its table and the run's instance; shared by the tool and every session (and by
// a call thread that outlived its limit), so it is unloaded only when all are gone.
class Plugin {
 public:
  Plugin(const std::string& path, const Json& params) : path_(path) {
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      const char* why = dlerror();
      fail("[tool plugin] cannot load '", path, "': ", why != nullptr ? why : "unknown error");
    }
    auto entry = reinterpret_cast<AhaToolPluginEntry>(dlsym(handle_, AHA_TOOL_PLUGIN_ENTRY));
    if (entry == nullptr) fail("[tool plugin] '", path, "' does not export ", AHA_TOOL_PLUGIN_ENTRY);
    t_ = entry(AHA_TOOL_ABI_VERSION);
    if (t_ == nullptr) fail("[tool plugin] '", path, "' refuses tool ABI version ", AHA_TOOL_ABI_VERSION);
    if (t_->abi_version != AHA_TOOL_ABI_VERSION || t_->struct_size < sizeof(AhaToolPlugin)) {
      fail("[tool plugin] '", path, "' speaks tool ABI version ", t_->abi_version,
           ", this aha speaks ", AHA_TOOL_ABI_VERSION, ": rebuild the plugin");
    }
    if (t_->create == nullptr || t_->destroy == nullptr || t_->open == nullptr ||
        t_->close == nullptr || t_->step == nullptr || (t_->environment && t_->reset == nullptr)) {
      fail("[tool plugin] '", path, "' has a null function in its table");
    }
    char err[1024] = {0};
    instance_ = t_->create(params.dump().c_str(), err, sizeof(err));
    err[sizeof(err) - 1] = 0;
    if (instance_ == nullptr) fail("[tool plugin] '", path, "': create failed: ", err);
  }
  ~Plugin() {
    if (instance_ != nullptr) t_->destroy(instance_);
    dlclose(handle_);
  }
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const AhaToolPlugin& table() const { return *t_; }
  void* instance() const { return instance_; }

 private:
  std::string path_;
  void* handle_ = nullptr;
  const AhaToolPlugin* t_ = nullptr;
  void* instance_ = nullptr;
};

// One call's result as the plugin left it.
struct Reply {
  int status = AHA_TOOL_FATAL;
  std::vector<char> out = std::vector<char>(kOutputBytes, 0);
  double reward = std::nan("");
  int done = 0;
};

class PluginSession : public rollout::ToolSession {
 public:
  PluginSession(std::shared_ptr<Plugin> p, std::string name, double timeout_s, void* session)
      : p_(std::move(p)), name_(std::move(name)), timeout_s_(timeout_s), session_(session) {}
  ~PluginSession() override {
    if (!abandoned_) p_->table().close(session_);
  }
  PluginSession(const PluginSession&) = delete;
  PluginSession& operator=(const PluginSession&) = delete;

  // The call lambdas copy what they use: a call past its limit outlives this object.
  ToolResult reset() override {
    return run([p = p_, s = session_](Reply& r) {
      r.status = p->table().reset(s, r.out.data(), r.out.size());
    });
  }
  ToolResult call(const std::string& input) override {
    return run([p = p_, s = session_, input](Reply& r) {
      r.status = p->table().step(s, input.data(), input.size(), r.out.data(), r.out.size(),
                                 &r.reward, &r.done);
    });
  }

 private:
  template <typename F>
  ToolResult run(F f) {
    if (abandoned_) return fatal("an earlier call did not return");
    auto reply = std::make_shared<Reply>();
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    // The thread keeps the plugin (in f) and the reply alive if it outlives the limit.
    std::thread([f, reply, done] {
      f(*reply);
      done->set_value();
    }).detach();
    if (finished.wait_for(std::chrono::duration<double>(timeout_s_)) != std::future_status::ready) {
      abandoned_ = true;  // the session is still in use: never close it
      return fatal("no answer within " + std::to_string(timeout_s_) + " s");
    }
    return to_result(*reply);
  }

  ToolResult to_result(Reply& r) const {
    const size_t n = strnlen(r.out.data(), r.out.size());
    if (n == r.out.size()) return fatal("an output of 1 MiB or more (or not NUL-terminated)");
    ToolResult out;
    out.output.assign(r.out.data(), n);
    if (r.status == AHA_TOOL_FATAL) return fatal(out.output);
    if (r.status != AHA_TOOL_OK && r.status != AHA_TOOL_ERROR) {
      return fatal("status " + std::to_string(r.status) + " is not AHA_TOOL_OK/ERROR/FATAL");
    }
    out.status = r.status == AHA_TOOL_OK ? ToolStatus::kOk : ToolStatus::kError;
    if (!std::isnan(r.reward) || r.done != 0) {
      if (!p_->table().environment) return fatal("a reward or done from a tool that is not an environment");
      if (!std::isnan(r.reward) && !std::isfinite(r.reward)) return fatal("an infinite reward");
      out.reward = r.reward;
      out.done = r.done != 0;
    }
    return out;
  }

  ToolResult fatal(const std::string& why) const { return {ToolStatus::kFatal, name_ + ": " + why}; }

  std::shared_ptr<Plugin> p_;
  std::string name_;
  double timeout_s_;
  void* session_;
  bool abandoned_ = false;
};

class PluginTool : public rollout::Tool {
 public:
  PluginTool(const PluginToolOptions& o) : o_(o), p_(std::make_shared<Plugin>(o.path, o.params)) {}
  std::string name() const override { return o_.name; }
  bool environment() const override { return p_->table().environment != 0; }
  std::unique_ptr<rollout::ToolSession> open(const std::string& prompt) const override {
    char err[1024] = {0};
    void* s = p_->table().open(p_->instance(), prompt.c_str(), err, sizeof(err));
    err[sizeof(err) - 1] = 0;
    if (s == nullptr) throw Error(o_.name + ": open failed: " + err);
    return std::make_unique<PluginSession>(p_, o_.name, o_.timeout_s, s);
  }

 private:
  PluginToolOptions o_;
  std::shared_ptr<Plugin> p_;
};

}  // namespace

std::unique_ptr<rollout::Tool> make_plugin_tool(const PluginToolOptions& o) {
  return std::make_unique<PluginTool>(o);
}

}  // namespace aha::tools
