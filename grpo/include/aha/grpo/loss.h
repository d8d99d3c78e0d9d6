// The GRPO policy loss and its gradient with respect to each completion token's logprob:
// clipped surrogate (clip-higher eps_low/eps_high, optional dual clip), token- or sequence-level
// (GSPO) ratios, or the CISPO, SAPO and GMPO objectives; KL to the reference (k1, k2, k3, or k3
// weighted by the importance ratio as in DeepSeek-V3.2), four aggregation modes, and off-policy
// sequence masking.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/core/config.h"

namespace aha::grpo {

enum class RatioLevel { kToken, kSequence };
enum class LossAgg { kSeqMeanTokenMean, kTokenMean, kSeqMeanTokenSumNorm, kBnpo };
enum class KlEstimator { kK1, kK2, kK3, kK3Ratio };
// kClip: PPO/GRPO's min(r A, clip(r) A). kCispo (MiniMax-M1): -sg(clip(r)) A log pi, every
// token keeps a gradient. kSapo (Qwen's soft adaptive PO): a sigmoid gate 4/tau sigma(tau (r-1))
// instead of the hard clip, tau_pos for A > 0 and tau_neg for A < 0. kGmpo (geometric-mean PO):
// A times the geometric mean of the sequence's ratios, each clipped in log space to
// [-eps_low, eps_high] on the pessimistic side.
enum class PolicyLoss { kClip, kCispo, kSapo, kGmpo };

struct LossConfig {
  double eps_low = 0.2;
  double eps_high = 0.2;
  double dual_clip = 0.0;  // c > 1 enables the dual clip for negative advantages
  RatioLevel level = RatioLevel::kToken;
  LossAgg agg = LossAgg::kSeqMeanTokenMean;
  double beta = 0.0;       // KL weight in the loss (0: no reference model)
  KlEstimator kl = KlEstimator::kK3;
  int64_t max_completion_len = 0;  // Dr. GRPO's constant normaliser
  double offpolicy_delta = 0.0;    // > 0: drop A<0 sequences with KL(old||new) > delta
  PolicyLoss policy = PolicyLoss::kClip;
  double entropy_coef = 0.0;  // entropy bonus: the loss subtracts coef * H, aggregated as tokens
  double sapo_tau_pos = 1.0, sapo_tau_neg = 1.05;
  static PolicyLoss parse_policy(const std::string& s);
  static RatioLevel parse_level(const std::string& s);
  static LossAgg parse_agg(const std::string& s);
  static KlEstimator parse_kl(const std::string& s);
};

// One completion's tokens. old_logp are the behaviour policy's logprobs (sampling), ref_logp
// the reference model's (may be empty when beta == 0), advantage per token.
struct SeqTerms {
  const float* logp = nullptr;
  const float* old_logp = nullptr;
  const float* ref_logp = nullptr;
  const double* advantage = nullptr;
  int64_t n = 0;
  const float* entropy = nullptr;  // per token, of the full distribution (entropy_coef != 0)
  const float* is_weight = nullptr;  // sampler/trainer IS weight per token (nullptr: 1)
  // Multi-turn episodes: 1 for the policy's tokens, 0 for observations (nullptr: all 1). A
  // masked token is not part of the loss at all: no term, no gradient, not counted in any
  // normaliser, and its logp/old_logp/ref_logp are never read (they may be NaN).
  const uint8_t* mask = nullptr;
};

struct LossMetrics {
  double loss = 0, pg_loss = 0, kl = 0;  // kl: mean per-token estimate
  double clip_low_frac = 0, clip_high_frac = 0, dual_clip_frac = 0;
  double ratio_mean = 0, ratio_max = 0;
  double entropy = 0;  // aggregated like the loss (the bonus term's H)
  int64_t tokens = 0, masked_seqs = 0;
  // Sums another minibatch's metrics in (ratio_max: the maximum).
  void add(const LossMetrics& o);
};

// Loss over a minibatch of sequences; dlogp[i][t] receives d loss / d logp_it and dentropy[i][t]
// d loss / d entropy_it (both overwritten; dentropy all zero without an entropy bonus; exactly
// zero at masked tokens).
LossMetrics grpo_loss(const std::vector<SeqTerms>& seqs, const LossConfig& cfg,
                      std::vector<std::vector<double>>& dlogp,
                      std::vector<std::vector<double>>& dentropy);

// The per-token KL estimate of a policy logprob against the reference, and its derivative
// with respect to logp (ratio = pi/pi_old is only used by kK3Ratio).
void kl_term(KlEstimator kind, double logp, double ref_logp, double old_logp, double& value,
             double& dvalue);

}  // namespace aha::grpo
