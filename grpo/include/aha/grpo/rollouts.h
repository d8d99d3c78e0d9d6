// The rollout file (`aha train --rollouts F.jsonl`, written by `aha export-rollouts`): the JSONL
// form of the Rollout record (core/rollout.h), which is also how rollouts travel between ranks.
// The format is in docs/rollouts.md.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/rollout.h"
#include "aha/policy/model_config.h"

namespace aha::grpo {

// What a rollout file is checked against.
struct RolloutLimits {
  int vocab = 0;
  int64_t max_positions = 0;  // the model's context
  int moe_layers = 0, experts = 0, experts_per_tok = 0;
  bool advantage_needs_group = true;  // false when every line must carry "advantage" anyway
  // Rows of a run log (the data-parallel gather): rollouts not learned from may have no tokens
  // and no reward.
  bool logged_rows = false;
};

// The limits of a model with this config and context.
RolloutLimits rollout_limits(const policy::ModelConfig& c, int64_t max_positions);

// Reads and validates a rollout file: one JSON object per line with prompt_id, prompt_ids,
// completion_ids, reward, and optional old_logprobs, ref_logprobs, advantage, routed_experts
// ([position][moe layer][k]), sampling_mask ([token][ids]), step_rewards ([[end, r], ...]),
// finish_reason, and the logged fields (rewards, reward_details, correct, advantage_used,
// learn, prompt, completion). Groups are numbered by first appearance of their prompt_id. Any
// problem is an aha::Error naming the file and line.
std::vector<Rollout> read_rollout_file(const std::string& path, const RolloutLimits& limits);

// One line of that format, and back (`where` names the source in errors). Every field of the
// record survives the round trip.
Json rollout_to_json(const Rollout& r);
Rollout rollout_from_json(const Json& j, const std::string& where, int64_t line,
                          const RolloutLimits& limits);

// `aha export-rollouts`: writes step `step` of a run database as rollout-file lines — the
// completions the step learned from, with the advantages, old/reference logprobs and routed
// experts it used — so that `aha train --rollouts` from the previous checkpoint repeats the
// update. Returns the lines written; throws when the step has no token-level records.
int64_t export_step(const std::string& db_path, int64_t step, bool with_text, std::ostream& out);

}  // namespace aha::grpo
