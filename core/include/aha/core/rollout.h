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

struct Rollout {
  int64_t group = 0;              // completions of one group share the advantage baseline
  std::string prompt_id;
  int64_t sample_index = 0;
  std::vector<int32_t> prompt_ids, completion_ids;
  std::string prompt_text, completion_text;
  std::string finish_reason = "stop";  // stop | length | error | cancelled
  std::string error;                   // why, when finish_reason is "error"
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
  bool learn = true;              // false: logged, but out of the loss (dynamic sampling, ...)
  double logged_advantage = 0;    // the advantage used (mean over tokens), for the run log
  int64_t n() const { return static_cast<int64_t>(completion_ids.size()); }
};

}  // namespace aha
