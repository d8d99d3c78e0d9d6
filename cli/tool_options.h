// The tool options of `aha eval` and `aha generate`: the same episodes as a run config's
// "rollout" object, from the command line.
#pragma once
#include <string>

#include "aha/grpo/trainer.h"
#include "options.h"

namespace aha::cli {

struct ToolArgs {
  std::string rollout;    // a "rollout" object: JSON text or @file.json
  std::string tools;      // comma list of tool names (calculator, python)
  std::string tool_stop;  // python | tool_call
  static constexpr int kUnset = -1000000;
  int max_turns = kUnset;  // kUnset: the --rollout object's, or the default
};

void add_tool_options(po::options_description& desc, ToolArgs& a);

// The episodes these options describe (no tools: single-turn). Errors name the option or the
// rollout.<key>.
grpo::EpisodeConfig tool_episodes(const ToolArgs& a);

}  // namespace aha::cli
