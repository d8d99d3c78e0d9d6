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

// The sampling distribution of one logits row as dense probabilities over the vocabulary (0
// outside the kept set; one-hot at the penalised argmax when greedy), with the bookkeeping of
// TokenSample. The probabilities are the ones sample_token draws from, computed the same way, so
// a token's logprob here equals the one sample_token records for it.
struct SamplingDist {
  std::vector<double> prob;
  int32_t n_kept = 0;
  float kept_min_logit = 0;
  std::vector<int32_t> kept_ids;  // ascending; empty when no filter truncated
  double policy_lse = 0;          // log-sum-exp of the raw row (temperature 1)
};
void sampling_dist(const float* logits, int vocab, const SamplingParams& params,
                   const std::vector<int32_t>& history, std::vector<float>& scratch,
                   SamplingDist& out);
// log sum_i exp(z[i] * inv_temp), the exponentials in double (VecExp), summed in id order.
double log_sum_exp(const float* z, int n, double inv_temp);

// Draws a token from dense probabilities (inverse CDF in id order).
int32_t draw(const std::vector<double>& prob, Rng& rng);

// Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): `draft` was drawn from q;
// accept it with probability min(1, p(draft) / q(draft)), else draw from max(0, p - q)
// renormalised. The returned token is distributed as p exactly, whatever q is. When greedy (p
// one-hot) this keeps the draft only if it is p's token.
int32_t speculative_pick(const SamplingDist& p, const std::vector<double>& q, int32_t draft,
                         Rng& rng, bool& accepted);
// The TokenSample of `token` under p (logits: the raw row p was made from).
TokenSample sample_of(const SamplingDist& p, const float* logits, int32_t token);

}  // namespace aha::rollout
