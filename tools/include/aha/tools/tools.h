// The built-in tools of multi-turn episodes and the tool set a config names. A tool implements
// rollout::Tool (rollout/episode.h); the engine runs it off the decode loop.
//   calculator  exact integer arithmetic (+ - * / // % ** and parentheses), bounded size
//   python      Python in the code sandbox, stateful across an episode's turns: each call re-runs
//               the episode's earlier cells with their output suppressed, then the new cell
//   command     a user program speaking JSON lines, one process per episode, time-limited
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/rewards/sandbox.h"
#include "aha/rollout/episode.h"

namespace aha::tools {

// The calculator's answer to one expression: the exact value, or why there is none.
struct CalcResult {
  std::string value;  // decimal integer, when error is empty
  std::string error;
};
// Integers of any sign; + - * / (exact: a remainder is an error) // (floor) % (floor) ** or ^
// (exponent 0..100000) and parentheses; at most 1000 characters in and 1000 digits in any value.
CalcResult calculate(const std::string& expr);

std::unique_ptr<rollout::Tool> make_calculator();

struct PythonToolOptions {
  std::string python = "python3";
  rewards::SandboxLimits limits;  // per call; the call re-runs the episode's earlier cells too
};
std::unique_ptr<rollout::Tool> make_python_tool(const PythonToolOptions& o);

struct CommandToolOptions {
  std::string name;
  std::vector<std::string> argv;  // started once per episode, in the current directory
  double timeout_s = 10.0;        // per call, and for the start
  int64_t max_line_bytes = 1 << 20;
  bool environment = false;       // reset/step: see below
};
// Protocol: for each call aha writes one line {"tool", "input", "prompt", "turn"} to the
// program's stdin and reads one line {"output": str, "status": "ok" | "error"} from its stdout.
// No answer in time, a line that is not such an object, or an exit ends the episode (fatal).
// An environment ("environment": true) is first sent {"reset": true, "prompt"} and answers
// {"observation": str}, which the episode starts with; its replies to calls (the policy's
// actions) are {"observation" | "output": str, "reward": number (optional), "done": bool
// (optional)}: rewards are logged on the turn (step rewards under grpo.advantage: process),
// done ends the episode.
std::unique_ptr<rollout::Tool> make_command_tool(const CommandToolOptions& o);

// A tool or environment from a shared library speaking tool_plugin_abi.h (whether it is an
// environment is the plugin's to say). Throws aha::Error when it does not load.
struct PluginToolOptions {
  std::string name;
  std::string path;
  Json params = Json::object();  // given to the plugin's create()
  double timeout_s = 10.0;       // per call: past it the episode ends (fatal)
};
std::unique_ptr<rollout::Tool> make_plugin_tool(const PluginToolOptions& o);

// The tools of `rollout.tools`: ["calculator", "python", {"name", "command", ...}, ...].
// Throws aha::Error naming the key on a bad entry.
class ToolSet {
 public:
  ToolSet() = default;
  static ToolSet from_json(const Json& j, const std::string& key);
  std::vector<const rollout::Tool*> tools() const;
  bool empty() const { return tools_.empty(); }

 private:
  std::vector<std::shared_ptr<rollout::Tool>> tools_;
};

}  // namespace aha::tools
