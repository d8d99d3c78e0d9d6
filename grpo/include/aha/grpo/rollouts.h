// Completions as the trainer learns from them, whether its own engine sampled them or another
// engine did (a rollout file, `aha train --rollouts F.jsonl`), and the JSONL form of that file
// (`aha export-rollouts` writes it back from a run database). The format is in docs/rollouts.md.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "aha/core/config.h"

namespace aha::grpo {

struct Rollout {
  int64_t group = 0;              // completions of one group share the advantage baseline
  std::string prompt_id;
  int64_t sample_index = 0;
  std::vector<int32_t> prompt_ids, completion_ids;
  std::string prompt_text, completion_text;
  std::string finish_reason = "stop";
  double reward = std::numeric_limits<double>::quiet_NaN();
  int correct = -1;               // -1: unknown
  std::vector<std::tuple<std::string, double, Json>> reward_parts;  // name, value, details
  // Recorded at sampling (the logprob_mismatch metric), may be empty: under the temperature-1
  // untruncated policy, and under the sampling distribution (temperature, top-k/top-p).
  std::vector<float> sampled_logprobs, sampling_dist_logprobs;
  // Given by a rollout file, else filled by the trainer from the current policy / reference.
  std::vector<float> old_logprobs, ref_logprobs;
  // Sampler/trainer importance weights per completion token (grpo.is_correction; empty: 1).
  std::vector<float> is_weights;
  std::optional<double> advantage;  // overrides the computed one
  // Process supervision: step rewards ending at completion token step_ends[j] (exclusive).
  std::vector<double> step_rewards;
  std::vector<int64_t> step_ends;
  // Keep routing: [moe layer][position * K + k] for the prompt_len + n - 1 positions that
  // went through the model at sampling (empty: route afresh).
  std::vector<std::vector<int32_t>> routing;
  // Keep sampling mask: the ids the sampler could pick at each completion token, ascending
  // (empty: the whole vocabulary; an empty outer vector: no mask recorded).
  std::vector<std::vector<int32_t>> kept_ids;
  bool learn = true;              // false: logged, but out of the loss (dynamic sampling, ...)
  double logged_advantage = 0;    // the advantage used (mean over tokens), for the run log
  int64_t n() const { return static_cast<int64_t>(completion_ids.size()); }
};

// What a rollout file is checked against.
struct RolloutLimits {
  int vocab = 0;
  int64_t max_positions = 0;  // the model's context
  int moe_layers = 0, experts = 0, experts_per_tok = 0;
  bool advantage_needs_group = true;  // false when every line must carry "advantage" anyway
};

// Reads and validates a rollout file: one JSON object per line with prompt_id, prompt_ids,
// completion_ids, reward, and optional old_logprobs, ref_logprobs, advantage, routed_experts
// ([position][moe layer][k]), sampling_mask ([token][ids]), step_rewards ([[end, r], ...]),
// finish_reason. Groups are numbered by first appearance of their prompt_id. Any problem is an
// aha::Error naming the file and line.
std::vector<Rollout> read_rollout_file(const std::string& path, const RolloutLimits& limits);

// One line of that format (the inverse of the reader).
Json rollout_to_json(const Rollout& r);

// `aha export-rollouts`: writes step `step` of a run database as rollout-file lines — the
// completions the step learned from, with the advantages, old/reference logprobs and routed
// experts it used — so that `aha train --rollouts` from the previous checkpoint repeats the
// update. Returns the lines written; throws when the step has no token-level records.
int64_t export_step(const std::string& db_path, int64_t step, bool with_text, std::ostream& out);

}  // namespace aha::grpo
