// `rollout.tools` -> the tools of a run.
#include <set>

#include "aha/core/error.h"
#include "aha/tools/tools.h"

namespace aha::tools {

namespace {

std::shared_ptr<rollout::Tool> python_from(StrictReader& r) {
  PythonToolOptions o;
  o.python = r.get<std::string>("python", o.python);
  o.limits.wall_s = r.get<double>("timeout_s", 5.0);
  o.limits.memory_mb = r.get<int64_t>("memory_mb", 512);
  o.limits.output_bytes = r.get<int64_t>("output_bytes", 65536);
  o.limits.n_procs = r.get<int>("n_procs", 32);
  o.limits.ro_paths = r.get<std::vector<std::string>>("ro_paths", {});
  if (!(o.limits.wall_s > 0) || o.limits.memory_mb < 16 || o.limits.output_bytes < 1) {
    fail(r.where(), ": need timeout_s > 0, memory_mb >= 16, output_bytes >= 1");
  }
  if (std::string why = rewards::sandbox_unavailable_reason(); !why.empty()) {
    fail(r.where(), ": the python tool needs the sandbox, which cannot run here (", why, ")");
  }
  return make_python_tool(o);
}

std::shared_ptr<rollout::Tool> command_from(StrictReader& r, const std::string& name) {
  CommandToolOptions o;
  o.name = name;
  const Json cmd = r.require<Json>("command");
  if (cmd.is_string()) {
    o.argv = {cmd.get<std::string>()};
  } else if (cmd.is_array() && !cmd.empty()) {
    for (const Json& a : cmd) {
      if (!a.is_string()) fail(r.where(), ".command must be a string or a list of strings");
      o.argv.push_back(a.get<std::string>());
    }
  } else {
    fail(r.where(), ".command must be a string or a non-empty list of strings");
  }
  o.timeout_s = r.get<double>("timeout_s", o.timeout_s);
  o.environment = r.get<bool>("environment", false);
  if (!(o.timeout_s > 0)) fail(r.where(), ".timeout_s must be > 0");
  return make_command_tool(o);
}

std::shared_ptr<rollout::Tool> plugin_from(StrictReader& r, const std::string& name) {
  PluginToolOptions o;
  o.name = name;
  o.path = r.require<std::string>("plugin");
  o.params = r.get<Json>("params", Json::object());
  o.timeout_s = r.get<double>("timeout_s", o.timeout_s);
  if (!(o.timeout_s > 0)) fail(r.where(), ".timeout_s must be > 0");
  if (!o.params.is_object()) fail(r.where(), ".params must be an object");
  try {
    return make_plugin_tool(o);
  } catch (const Error& e) {
    fail(r.where(), ": ", e.what());
  }
}

}  // namespace

ToolSet ToolSet::from_json(const Json& j, const std::string& key) {
  ToolSet set;
  if (j.is_null()) return set;
  if (!j.is_array()) fail(key, " must be a list of tools (\"calculator\", \"python\" or {\"name\", ...})");
  std::set<std::string> names;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string where = key + "[" + std::to_string(i) + "]";
    const Json spec = j[i].is_string() ? Json{{"name", j[i]}} : j[i];
    if (!spec.is_object()) fail(where, " must be a tool name or an object");
    StrictReader r(spec, where);
    const std::string name = r.require<std::string>("name");
    std::shared_ptr<rollout::Tool> tool;
    if (r.has("command")) {
      tool = command_from(r, name);
    } else if (r.has("plugin")) {
      tool = plugin_from(r, name);
    } else if (name == "calculator") {
      tool = make_calculator();
    } else if (name == "python") {
      tool = python_from(r);
    } else {
      fail(where, ": unknown tool \"", name, "\" (built in: calculator, python; others need \"command\" or \"plugin\")");
    }
    r.finish();
    if (!names.insert(name).second) fail(where, ": tool \"", name, "\" named twice");
    if (tool->environment()) {
      for (const auto& t : set.tools_) {
        if (t->environment()) fail(where, ": a second environment (\"", t->name(), "\" is one): at most one");
      }
    }
    set.tools_.push_back(std::move(tool));
  }
  return set;
}

std::vector<const rollout::Tool*> ToolSet::tools() const {
  std::vector<const rollout::Tool*> out;
  for (const auto& t : tools_) out.push_back(t.get());
  return out;
}

}  // namespace aha::tools
