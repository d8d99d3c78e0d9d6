// `aha export-rollouts RUN.db --step N`: a logged step as a rollout file, so that
// `aha train --rollouts` replays its update (docs/rollouts.md).
#include <spdlog/spdlog.h>

#include <cmath>
#include <iostream>

#include "aha/grpo/rollouts.h"
#include "aha/runlog/run_db.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_export_rollouts(const Args& args) {
  po::options_description desc("options");
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
  auto db = runlog::RunDb::open_readonly(path);
  auto rows = db->read_rollouts(step);
  if (rows.empty()) fail(path, " has no rollouts at step ", step);
  auto cfg = db->query("SELECT json_extract(config, '$.grpo.advantage') AS a FROM runs ORDER BY id DESC LIMIT 1");
  const bool process = !cfg.empty() && cfg[0]["a"].is_string() && cfg[0]["a"].get<std::string>() == "process";
  if (process) spdlog::warn("process supervision: per-token advantages are not logged; the file carries rewards only");
  int64_t written = 0, skipped = 0;
  for (const runlog::RolloutRow& r : rows) {
    // Rows without a token record were not learned from (dynamic sampling, truncation mask,
    // engine errors) or were logged with grpo.log_tokens = false.
    if (r.completion_ids.empty()) {
      ++skipped;
      continue;
    }
    grpo::Rollout x;
    x.prompt_id = r.prompt_id;
    x.sample_index = r.sample_index;
    x.prompt_ids = r.prompt_ids;
    x.completion_ids = r.completion_ids;
    x.finish_reason = r.finish_reason;
    x.reward = r.reward;
    // The logged advantage is the one the update used, whatever the group looked like.
    if (!process && std::isfinite(r.advantage)) x.advantage = r.advantage;
    x.old_logprobs = r.old_logprobs;
    x.ref_logprobs = r.ref_logprobs;
    x.routing = r.routing;
    x.reward_parts = r.rewards;
    if (text) {
      x.prompt_text = r.prompt;
      x.completion_text = r.completion;
    }
    std::cout << grpo::rollout_to_json(x).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    ++written;
  }
  if (written == 0) {
    fail("step ", step, " of ", path, " has no token-level records (logged with grpo.log_tokens = false?)");
  }
  spdlog::info("step {}: {} rollouts written, {} not learned from (skipped)", step, written, skipped);
  return 0;
}

}  // namespace aha::cli
