// Reward plugins: a shared library speaking the C ABI of plugin_abi.h, or an external command
// speaking JSON lines on stdin/stdout (so rewards can be written in Python). Both become
// ordinary RewardFunctions; a broken plugin is an aha::Error at load time and a reason (score 0)
// at scoring time, never a crash of the host (except a library that crashes in-process: use a
// command plugin for code you do not trust).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aha/rewards/reward.h"

namespace aha::rewards {

// dlopen()s path and creates an instance with params. Throws aha::Error naming the file when it
// does not load, lacks `aha_reward_plugin`, speaks another ABI version or rejects the params.
std::unique_ptr<RewardFunction> load_plugin_reward(const std::string& path, const Json& params);

struct CommandOptions {
  std::vector<std::string> argv;  // the program and its arguments (PATH is searched)
  double timeout_s = 10.0;        // per sample; then the process is killed and restarted
  double startup_timeout_s = 30;  // for the first sample after a (re)start, start-up included
  int max_restarts = 3;           // restarts after crashes or timeouts before giving up
  Json params = Json::object();   // passed in the environment as AHA_REWARD_PARAMS
};

// Protocol: one request line {"prompt", "completion", "row", "n_completion_tokens"} per
// sample, one reply line {"reward": x, "details": {...}} or {"error": "..."}. The process is
// started now (aha::Error when it cannot be) and serves samples one at a time (calls are
// serialised; thread-safe).
std::unique_ptr<RewardFunction> start_command_reward(const CommandOptions& options);

// The sample as the JSON that plugins receive.
Json sample_to_json(const Sample& sample);

}  // namespace aha::rewards
