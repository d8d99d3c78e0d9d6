#include "tool_options.h"

#include "aha/core/error.h"
#include "aha/core/fileio.h"

namespace aha::cli {

void add_tool_options(po::options_description& desc, ToolArgs& a) {
  desc.add_options()
      ("rollout", po::value(&a.rollout),
       "tool-using episodes: a run config's \"rollout\" object, as JSON text or @file.json")
      ("tools", po::value(&a.tools), "tools by name, comma-separated: calculator, python")
      ("tool-stop", po::value(&a.tool_stop), "how a call is written: python | tool_call")
      ("max-turns", po::value(&a.max_turns), "tool calls per episode (default 4)");
}

grpo::EpisodeConfig tool_episodes(const ToolArgs& a) {
  Json j = Json::object();
  if (!a.rollout.empty()) {
    const std::string text = a.rollout[0] == '@' ? read_file(a.rollout.substr(1)) : a.rollout;
    j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("--rollout must be a JSON object or @file.json");
  }
  if (!a.tools.empty()) {
    const std::vector<std::string> list = comma_list(a.tools);
    if (list.empty()) fail("--tools names no tool");
    j["tools"] = list;
  }
  if (!a.tool_stop.empty()) j["tool_stop"] = a.tool_stop;
  if (a.max_turns != ToolArgs::kUnset) j["max_turns"] = a.max_turns;
  return grpo::EpisodeConfig::from_json(j);
}

}  // namespace aha::cli
