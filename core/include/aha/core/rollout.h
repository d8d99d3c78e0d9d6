// One rollout: the record every stage shares. The trainer fills it from the engine's sample
// (or a rollout file), the rewards fill the reward fields, the update its logprobs and
// advantage, the run database stores it (tables rollouts, rewards, rollout_tokens) and reads it
// back, and `aha export-rollouts` and the data-parallel gather write it as one JSON line
// (grpo/rollouts.h, docs/rollouts.md).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "aha/core/config.h"

namespace aha {

// One turn of a multi-turn episode: a span [begin, end) of the completion tokens. Assistant
// turns are the policy's tokens; tool turns are observations (out of the loss, no logprob).
struct Turn {
  std::string role;    // assistant | tool
  int64_t begin = 0, end = 0;
  std::string text;    // the span decoded
  std::string tool;    // tool turns: the tool's name
  std::string status;  // tool turns: ok | error (the model sees it) | fatal: ... (episode ended)
  double seconds = 0;  // tool turns: wall time of the call
  // Environment turns: the reward of the step (NaN: none).
  double reward = std::numeric_limits<double>::quiet_NaN();
};

struct Rollout {
  int64_t group = 0;              // completions of one group share the advantage baseline
  std::string prompt_id;
  int64_t sample_index = 0;
  std::vector<int32_t> prompt_ids, completion_ids;
  std::string prompt_text, completion_text;
  // stop | length | error | cancelled; episodes also: tool_error (a broken, hanging or hostile
  // tool ended it: reward 0) | max_turns (a tool call past rollout.max_turns)
  std::string finish_reason = "stop";
  std::string error;                   // why, when finish_reason is "error" or "tool_error"
  double reward = std::numeric_limits<double>::quiet_NaN();
  int correct = -1;               // -1: unknown
  std::vector<std::tuple<std::string, double, Json>> reward_parts;  // name, value, details
  // Recorded at sampling (the rollout engine fills them; the logprob_mismatch metric), may be
  // empty: under the temperature-1 untruncated policy, and under the sampling distribution
  // (temperature, top-k/top-p).
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
  // Multi-turn episodes: per completion token 1 (the policy's, in the loss) or 0 (an
  // observation: no gradient, NaN in sampled_logprobs); empty: every token is the policy's.
  std::vector<uint8_t> loss_mask;
  std::vector<Turn> turns;        // empty for single-turn rollouts
  bool learn = true;              // false: logged, but out of the loss (dynamic sampling, ...)
  // The weights that sampled it: the number of updates they had seen (-1: unknown). Behind the
  // step that learns from it under asynchronous rollouts (grpo.max_staleness).
  int64_t policy_version = -1;
  double logged_advantage = 0;    // the advantage used (mean over tokens), for the run log
  int64_t n() const { return static_cast<int64_t>(completion_ids.size()); }
  // Whether completion token t is the policy's (in the loss).
  bool in_loss(int64_t t) const { return loss_mask.empty() || loss_mask[t] != 0; }
};

}  // namespace aha
