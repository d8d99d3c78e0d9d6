// Token sampling from logits: temperature, top-k, top-p, min-p, repetition penalty, greedy.
// Every sample also reports its logprob under the untruncated temperature-1 policy and the
// kept set (its size and the smallest kept logit) so training can rebuild the truncation mask.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/rng.h"

namespace aha::rollout {

struct SamplingParams {
  double temperature = 1.0;  // 0: greedy
  int top_k = 0;             // 0: off
  double top_p = 1.0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;  // HF style: divide positive logits, multiply negative ones
  int max_new_tokens = 256;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop_strings;
  bool greedy() const { return temperature <= 0.0; }
  // When no stop ids were given, stop at `eos` (the tokenizer's, which the model config may
  // not name).
  void stop_at_eos(std::optional<int32_t> eos) {
    if (stop_token_ids.empty() && eos) stop_token_ids = {*eos};
  }
  // Throws aha::Error on out-of-range values.
  void validate() const;
  static SamplingParams from_json(const Json& j);  // strict
};

struct TokenSample {
  int32_t token = -1;
  float logprob = 0;         // under the sampling distribution (after penalty/temp/truncation)
  float policy_logprob = 0;  // under softmax(logits), temperature 1, no truncation
  int32_t n_kept = 0;        // size of the kept set
  float kept_min_logit = 0;  // smallest (penalised, raw-scale) logit in the kept set
};

// Samples one token. `history` holds the ids the repetition penalty applies to. `scratch` is
// reused between calls to avoid allocation. Deterministic for a given rng state.
// kept_ids (optional) receives the kept set, ascending, when a filter truncated it (empty when
// the whole vocabulary was kept): what training needs to keep the sampling mask.
TokenSample sample_token(const float* logits, int vocab, const SamplingParams& params, Rng& rng,
                         const std::vector<int32_t>& history, std::vector<float>& scratch,
                         std::vector<int32_t>* kept_ids = nullptr);

}  // namespace aha::rollout
