// Importance-sampling correction (grpo.is_correction, tis or mis): the trainer's pi_old against
// the sampler's logprobs, per token or per completion.
#include <algorithm>
#include <cmath>
#include <string>

#include "trainer_state.h"

namespace aha::grpo {

void Trainer::State::importance_weights(std::vector<Rollout>& rs, const PassOptions& po, Json& m) {
  // rho = pi_old(trainer) / pi_sampler per token (or per completion): the sampler's logprobs
  // are the file's, or the engine's under the same distribution the trainer computes.
  const GrpoConfig& g = cfg.grpo;
  const bool tis = g.is_correction == IsCorrection::kTis;
  const bool seq = g.is_level == RatioLevel::kSequence;
  double k1 = 0, cut = 0;
  int64_t tokens = 0, units = 0, missing = 0;
  for (Rollout& r : rs) {
    r.is_weights.clear();
    if (r.n() == 0) continue;
    // A rollout file's logprobs are taken as given; the engine's are comparable under the
    // sampling distribution (kept sets) or, at temperature 1, under the untruncated policy.
    static const std::vector<float> kNone;
    const std::vector<float>& beh =
        !file_rollouts.empty()                                 ? r.sampled_logprobs
        : po.keep_mask && !r.sampling_dist_logprobs.empty()    ? r.sampling_dist_logprobs
        : po.temperature == 1.0                                ? r.sampled_logprobs
                                                               : kNone;
    if (beh.empty() || beh.size() != r.old_logprobs.size()) {
      ++missing;
      continue;
    }
    r.is_weights.assign(r.old_logprobs.size(), 1.0f);
    double seq_log = 0;
    for (size_t t = 0; t < beh.size(); ++t) {
      if (!r.in_loss(static_cast<int64_t>(t))) continue;  // observations: no sampler logprob
      const double d = double(r.old_logprobs[t]) - beh[t];  // log rho_t
      k1 += -d;                                             // KL(sampler || trainer), k1
      seq_log += d;
      ++tokens;
      if (seq) continue;
      const double rho = std::exp(d);
      const bool out = tis ? rho > g.is_cap : (rho > g.is_cap || rho < 1.0 / g.is_cap);
      r.is_weights[t] = static_cast<float>(tis ? std::min(rho, g.is_cap) : (out ? 0.0 : rho));
      cut += out;
      ++units;
    }
    if (seq) {
      const double rho = std::exp(std::clamp(seq_log, -50.0, 50.0));
      const bool out = tis ? rho > g.is_cap : (rho > g.is_cap || rho < 1.0 / g.is_cap);
      const float w = static_cast<float>(tis ? std::min(rho, g.is_cap) : (out ? 0.0 : rho));
      std::fill(r.is_weights.begin(), r.is_weights.end(), w);
      cut += out;
      ++units;
    }
  }
  if (tokens > 0) m["is/mismatch_k1"] = k1 / double(tokens);
  if (units > 0) m[tis ? "is/truncated_frac" : "is/masked_frac"] = cut / double(units);
  if (missing > 0 && !warned_no_sampler_logprobs) {
    warned_no_sampler_logprobs = true;
    log_event(step + 1, "warn", "is_correction",
              std::to_string(missing) + " rollouts have no sampler logprobs under the training "
              "distribution (sampling at temperature != 1 without keep_sampling_mask): weight 1");
  }
}

}  // namespace aha::grpo
