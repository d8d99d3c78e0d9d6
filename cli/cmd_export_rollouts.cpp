// `aha export-rollouts RUN.db --step N`: a logged step as a rollout file, so that
// `aha train --rollouts` replays its update (docs/rollouts.md).
#include <iostream>

#include "aha/grpo/rollouts.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_export_rollouts(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string path;
  int64_t step = 0;
  bool text = false;
  desc.add_options()
      ("db", po::value(&path)->required(), "run database (run.db)")
      ("step", po::value(&step)->required(), "the logged step to export (1-based)")
      ("text", po::bool_switch(&text), "also write the prompt and completion text");
  po::positional_options_description pos;
  pos.add("db", 1);
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha export-rollouts RUN.db --step N > rollouts.jsonl\n"
                     "One JSON line per completion the step learned from: prompt_ids,\n"
                     "completion_ids, reward, advantage, old/ref logprobs, routed experts.",
                     &pos)) {
    return 0;
  }
  grpo::export_step(path, step, text, std::cout);
  return 0;
}

}  // namespace aha::cli
