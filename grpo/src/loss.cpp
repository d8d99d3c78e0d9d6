// The clipped policy-gradient loss with KL, in closed form with its gradient.
#include "aha/grpo/loss.h"

#include <algorithm>
#include <cmath>

#include "aha/core/error.h"

namespace aha::grpo {

RatioLevel LossConfig::parse_level(const std::string& s) {
  if (s == "token") return RatioLevel::kToken;
  if (s == "sequence") return RatioLevel::kSequence;
  fail("grpo.ratio_level must be token or sequence (got '", s, "')");
}

LossAgg LossConfig::parse_agg(const std::string& s) {
  if (s == "seq-mean-token-mean") return LossAgg::kSeqMeanTokenMean;
  if (s == "token-mean") return LossAgg::kTokenMean;
  if (s == "seq-mean-token-sum-norm") return LossAgg::kSeqMeanTokenSumNorm;
  if (s == "bnpo") return LossAgg::kBnpo;
  fail("grpo.loss_agg must be seq-mean-token-mean, token-mean, seq-mean-token-sum-norm or bnpo");
}

PolicyLoss LossConfig::parse_policy(const std::string& s) {
  if (s == "clip" || s == "grpo") return PolicyLoss::kClip;
  if (s == "cispo") return PolicyLoss::kCispo;
  if (s == "sapo") return PolicyLoss::kSapo;
  if (s == "gmpo") return PolicyLoss::kGmpo;
  fail("grpo.policy_loss must be clip, cispo, sapo or gmpo (got '", s, "')");
}

KlEstimator LossConfig::parse_kl(const std::string& s) {
  if (s == "k1") return KlEstimator::kK1;
  if (s == "k2") return KlEstimator::kK2;
  if (s == "k3") return KlEstimator::kK3;
  if (s == "k3_ratio") return KlEstimator::kK3Ratio;
  fail("grpo.kl_estimator must be k1, k2, k3 or k3_ratio (got '", s, "')");
}

void kl_term(KlEstimator kind, double logp, double ref, double old, double& v, double& dv) {
  const double delta = ref - logp;  // log(pi_ref / pi)
  switch (kind) {
    case KlEstimator::kK1:
      v = -delta;
      dv = 1.0;
      return;
    case KlEstimator::kK2:
      v = 0.5 * delta * delta;
      dv = -delta;
      return;
    case KlEstimator::kK3:
      v = std::exp(delta) - delta - 1.0;
      dv = 1.0 - std::exp(delta);
      return;
    case KlEstimator::kK3Ratio: {
      // Samples come from pi_old: weight k3 by pi/pi_old (gradient through both factors).
      const double r = std::exp(logp - old);
      const double k3 = std::exp(delta) - delta - 1.0;
      v = r * k3;
      dv = r * k3 + r * (1.0 - std::exp(delta));
      return;
    }
  }
}

namespace {

// One token's policy term: loss value and d loss / d log_ratio (log_ratio = logp - old_logp;
// for CISPO the derivative is with respect to logp itself, which is the same thing here).
struct TokenTerm {
  double loss = 0, dlog_ratio = 0;
};

TokenTerm clip_term(double r, double a, const LossConfig& cfg, LossMetrics& m) {
  const double clipped = std::clamp(r, 1.0 - cfg.eps_low, 1.0 + cfg.eps_high);
  double surrogate = std::min(r * a, clipped * a);
  bool grad_flows = r * a <= clipped * a;
  if (a > 0 && r > 1.0 + cfg.eps_high) ++m.clip_high_frac;
  if (a < 0 && r < 1.0 - cfg.eps_low) ++m.clip_low_frac;
  if (cfg.dual_clip > 1.0 && a < 0 && surrogate < cfg.dual_clip * a) {
    surrogate = cfg.dual_clip * a;
    grad_flows = false;
    ++m.dual_clip_frac;
  }
  // d(-surrogate)/d log_ratio = -r * a where the unclipped branch is active.
  return {-surrogate, grad_flows ? -r * a : 0.0};
}

TokenTerm policy_term(double log_ratio, double logp, double a, const LossConfig& cfg,
                      LossMetrics& m) {
  const double r = std::exp(log_ratio);
  switch (cfg.policy) {
    case PolicyLoss::kCispo: {
      // The IS weight is clipped and detached; the gradient goes through log pi only.
      const double w = std::clamp(r, 1.0 - cfg.eps_low, 1.0 + cfg.eps_high);
      if (r > 1.0 + cfg.eps_high) ++m.clip_high_frac;
      if (r < 1.0 - cfg.eps_low) ++m.clip_low_frac;
      return {-w * a * logp, -w * a};
    }
    case PolicyLoss::kSapo: {
      const double tau = a > 0 ? cfg.sapo_tau_pos : cfg.sapo_tau_neg;
      const double s = 1.0 / (1.0 + std::exp(-tau * (r - 1.0)));
      // d/dlog_ratio of 4/tau sigma(tau (r - 1)) = 4 sigma (1 - sigma) r
      return {-(4.0 / tau) * s * a, -4.0 * s * (1.0 - s) * r * a};
    }
    case PolicyLoss::kClip:
    case PolicyLoss::kGmpo:  // handled per sequence
      break;
  }
  return clip_term(r, a, cfg, m);
}

// GMPO: -A exp(mean_t c_t), c_t = log r_t clipped to [-eps_low, eps_high] on the pessimistic
// side (A > 0: only large ratios are cut; A < 0: only small ones). Writes d/d log r_t.
double gmpo_sequence(const SeqTerms& s, const LossConfig& cfg, std::vector<double>& dlog_ratio,
                     LossMetrics& m) {
  const double a = s.advantage[0];
  const double sgn = a > 0 ? 1.0 : (a < 0 ? -1.0 : 0.0);
  double mean = 0;
  std::vector<char> active(s.n);
  for (int64_t t = 0; t < s.n; ++t) {
    const double l = double(s.logp[t]) - s.old_logp[t];
    const double c = std::clamp(l, -cfg.eps_low, cfg.eps_high);
    // min over sgn * {l, c}: the smaller (more pessimistic) objective
    const bool unclipped = sgn * l <= sgn * c;
    active[t] = unclipped;
    if (!unclipped) ++(l > 0 ? m.clip_high_frac : m.clip_low_frac);
    mean += unclipped ? l : c;
  }
  mean /= double(s.n);
  const double g = std::exp(mean);
  dlog_ratio.assign(s.n, 0.0);
  for (int64_t t = 0; t < s.n; ++t) {
    if (active[t]) dlog_ratio[t] = -a * g / double(s.n);
  }
  return -a * g;
}

// Marks the sequences that stay out of the loss: empty ones, and with offpolicy_delta the
// negative-advantage ones that drifted too far (counted in m.masked_seqs). Returns the number of
// live sequences; total_tokens receives their tokens.
int64_t mask_sequences(const std::vector<SeqTerms>& seqs, const LossConfig& cfg,
                       std::vector<char>& masked, int64_t& total_tokens, LossMetrics& m) {
  int64_t live_seqs = 0;
  total_tokens = 0;
  masked.assign(seqs.size(), 0);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SeqTerms& s = seqs[i];
    AHA_CHECK(cfg.entropy_coef == 0 || s.entropy != nullptr || s.n == 0,
              "an entropy bonus needs each token's entropy");
    if (s.n == 0) {
      masked[i] = 1;
      continue;
    }
    if (cfg.offpolicy_delta > 0) {
      // k1 estimate of KL(pi_old || pi_theta) from the old policy's own samples.
      double kl = 0;
      for (int64_t t = 0; t < s.n; ++t) kl += double(s.old_logp[t]) - s.logp[t];
      kl /= double(s.n);
      if (s.advantage[0] < 0 && kl > cfg.offpolicy_delta) {
        masked[i] = 1;
        ++m.masked_seqs;
        continue;
      }
    }
    total_tokens += s.n;
    ++live_seqs;
  }
  return live_seqs;
}

// Aggregation weight of each token of an n-token sequence.
double token_weight(const LossConfig& cfg, int64_t n, int64_t live_seqs, int64_t total_tokens) {
  switch (cfg.agg) {
    case LossAgg::kSeqMeanTokenMean: return 1.0 / (double(n) * live_seqs);
    case LossAgg::kTokenMean:
    case LossAgg::kBnpo: return 1.0 / double(total_tokens);
    case LossAgg::kSeqMeanTokenSumNorm:
      AHA_CHECK(cfg.max_completion_len > 0, "seq-mean-token-sum-norm needs max_completion_len");
      return 1.0 / (double(cfg.max_completion_len) * live_seqs);
  }
  return 0.0;
}

// One live sequence with token weight w: its loss terms into m, d loss / d logp into dlogp and
// d loss / d entropy into dentropy; its ratios are added to ratio_sum.
void sequence_loss(const SeqTerms& s, const LossConfig& cfg, double w, std::vector<double>& dlogp,
                   std::vector<double>& dentropy, double& ratio_sum, LossMetrics& m) {
  double seq_log_ratio = 0;
  if (cfg.level == RatioLevel::kSequence) {
    for (int64_t t = 0; t < s.n; ++t) seq_log_ratio += double(s.logp[t]) - s.old_logp[t];
    seq_log_ratio /= double(s.n);
  }
  double seq_grad = 0;  // GSPO: every token's loss depends on the sequence ratio
  std::vector<double> gmpo_grad;
  double gmpo_loss = 0;
  if (cfg.policy == PolicyLoss::kGmpo) {
    // One sequence-level objective, spread over the tokens so that aggregation weighs it
    // like a per-token loss of the same value.
    gmpo_loss = gmpo_sequence(s, cfg, gmpo_grad, m);
  }
  for (int64_t t = 0; t < s.n; ++t) {
    const double a = s.advantage[t];
    const double log_ratio =
        cfg.level == RatioLevel::kSequence ? seq_log_ratio : double(s.logp[t]) - s.old_logp[t];
    const double r = std::exp(log_ratio);
    ratio_sum += r;
    m.ratio_max = std::max(m.ratio_max, r);
    TokenTerm pg;
    if (cfg.policy == PolicyLoss::kGmpo) {
      pg = {gmpo_loss, gmpo_grad[t] * double(s.n)};
    } else {
      pg = policy_term(log_ratio, s.logp[t], a, cfg, m);
    }
    // TIS/MIS: the policy term of a token sampled by another engine, reweighted (a constant).
    const double isw = s.is_weight != nullptr ? double(s.is_weight[t]) : 1.0;
    pg.loss *= isw;
    pg.dlog_ratio *= isw;
    if (cfg.policy == PolicyLoss::kGmpo) gmpo_grad[t] *= isw;
    double loss_t = pg.loss;
    m.pg_loss += w * pg.loss;
    double dkl = 0;
    if (cfg.beta > 0) {
      double kl = 0;
      kl_term(cfg.kl, s.logp[t], s.ref_logp[t], s.old_logp[t], kl, dkl);
      loss_t += cfg.beta * kl;
      m.kl += kl;
    }
    if (cfg.entropy_coef != 0) {
      loss_t -= cfg.entropy_coef * s.entropy[t];
      m.entropy += w * s.entropy[t];
      dentropy[t] = -w * cfg.entropy_coef;
    }
    m.loss += w * loss_t;
    if (cfg.policy == PolicyLoss::kGmpo) {
      // d(w * n * gmpo)/d logp_t: the sequence term appears once per token in the sum.
      dlogp[t] = w * (double(s.n) * gmpo_grad[t] + cfg.beta * dkl);
    } else if (cfg.level == RatioLevel::kSequence) {
      seq_grad += w * pg.dlog_ratio / double(s.n);
      dlogp[t] = w * cfg.beta * dkl;
    } else {
      dlogp[t] = w * (pg.dlog_ratio + cfg.beta * dkl);
    }
  }
  if (cfg.level == RatioLevel::kSequence) {
    for (int64_t t = 0; t < s.n; ++t) dlogp[t] += seq_grad;
  }
}

LossMetrics dense_loss(const std::vector<SeqTerms>& seqs, const LossConfig& cfg,
                       std::vector<std::vector<double>>& dlogp,
                       std::vector<std::vector<double>>& dentropy);

// A masked sequence's in-loss tokens, gathered: the loss of an episode is the loss of its
// policy tokens alone, as if the observations were not there.
struct Gathered {
  std::vector<float> logp, old_logp, ref_logp, entropy, is_weight;
  std::vector<double> advantage;
  std::vector<int64_t> at;  // position of each gathered token in the sequence

  SeqTerms gather(const SeqTerms& s) {
    for (int64_t t = 0; t < s.n; ++t) {
      if (s.mask[t] == 0) continue;
      at.push_back(t);
      logp.push_back(s.logp[t]);
      old_logp.push_back(s.old_logp[t]);
      if (s.ref_logp != nullptr) ref_logp.push_back(s.ref_logp[t]);
      if (s.entropy != nullptr) entropy.push_back(s.entropy[t]);
      if (s.is_weight != nullptr) is_weight.push_back(s.is_weight[t]);
      advantage.push_back(s.advantage[t]);
    }
    SeqTerms g;
    g.n = static_cast<int64_t>(at.size());
    g.logp = logp.data();
    g.old_logp = old_logp.data();
    g.ref_logp = s.ref_logp != nullptr ? ref_logp.data() : nullptr;
    g.entropy = s.entropy != nullptr ? entropy.data() : nullptr;
    g.is_weight = s.is_weight != nullptr ? is_weight.data() : nullptr;
    g.advantage = advantage.data();
    return g;
  }
};

}  // namespace

LossMetrics grpo_loss(const std::vector<SeqTerms>& seqs, const LossConfig& cfg,
                      std::vector<std::vector<double>>& dlogp,
                      std::vector<std::vector<double>>& dentropy) {
  bool any_mask = false;
  for (const SeqTerms& s : seqs) any_mask |= s.mask != nullptr;
  if (!any_mask) return dense_loss(seqs, cfg, dlogp, dentropy);
  std::vector<Gathered> g(seqs.size());
  std::vector<SeqTerms> dense(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) dense[i] = seqs[i].mask ? g[i].gather(seqs[i]) : seqs[i];
  std::vector<std::vector<double>> dl, de;
  LossMetrics m = dense_loss(dense, cfg, dl, de);
  dlogp.assign(seqs.size(), {});
  dentropy.assign(seqs.size(), {});
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].mask == nullptr) {
      dlogp[i] = std::move(dl[i]);
      dentropy[i] = std::move(de[i]);
      continue;
    }
    dlogp[i].assign(seqs[i].n, 0.0);
    dentropy[i].assign(seqs[i].n, 0.0);
    for (size_t k = 0; k < g[i].at.size(); ++k) {
      dlogp[i][g[i].at[k]] = dl[i][k];
      dentropy[i][g[i].at[k]] = de[i][k];
    }
  }
  return m;
}

namespace {

LossMetrics dense_loss(const std::vector<SeqTerms>& seqs, const LossConfig& cfg,
                       std::vector<std::vector<double>>& dlogp,
                       std::vector<std::vector<double>>& dentropy) {
  LossMetrics m;
  dlogp.assign(seqs.size(), {});
  dentropy.assign(seqs.size(), {});
  for (size_t i = 0; i < seqs.size(); ++i) {
    dlogp[i].assign(seqs[i].n, 0.0);
    dentropy[i].assign(seqs[i].n, 0.0);
  }
  std::vector<char> masked;
  int64_t total_tokens = 0;
  const int64_t live_seqs = mask_sequences(seqs, cfg, masked, total_tokens, m);
  if (live_seqs == 0) return m;
  double ratio_sum = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (masked[i]) continue;
    const double w = token_weight(cfg, seqs[i].n, live_seqs, total_tokens);
    sequence_loss(seqs[i], cfg, w, dlogp[i], dentropy[i], ratio_sum, m);
  }
  m.tokens = total_tokens;
  m.ratio_mean = ratio_sum / double(total_tokens);
  m.kl /= double(total_tokens);
  m.clip_low_frac /= double(total_tokens);
  m.clip_high_frac /= double(total_tokens);
  m.dual_clip_frac /= double(total_tokens);
  return m;
}

}  // namespace

void LossMetrics::add(const LossMetrics& o) {
  loss += o.loss;
  pg_loss += o.pg_loss;
  kl += o.kl;
  clip_low_frac += o.clip_low_frac;
  clip_high_frac += o.clip_high_frac;
  dual_clip_frac += o.dual_clip_frac;
  ratio_mean += o.ratio_mean;
  ratio_max = std::max(ratio_max, o.ratio_max);
  entropy += o.entropy;
  tokens += o.tokens;
  masked_seqs += o.masked_seqs;
}

}  // namespace aha::grpo
