// One minibatch update on this rank: its forward, loss and backward (whole, or in micro-batches
// whose gradients add up), the gradient sums over ranks, then the optimizer step.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace {

// For the expert-parallel tests: AHA_FAULT=stall:RANK:STEP stops that rank just before step
// STEP's first update, so that the others wait in the update's first all-to-all (trainer.cpp's
// exit/hang faults fire at the start of a step, before any expert exchange).
void stall_before_update(int64_t step) {
  const char* f = std::getenv("AHA_FAULT");
  char kind[8] = {0};
  int rank = -1;
  long long at = -1;
  if (f == nullptr || std::sscanf(f, "%7[a-z]:%d:%lld", kind, &rank, &at) != 3) return;
  if (std::string(kind) != "stall" || rank != dist::rank() || at != step) return;
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}

// Per-sequence gradients [k][j], scaled by f, into the packed rows (offs[k] + j) of n.
void scatter_scaled(const std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                    const std::vector<int64_t>& offs, double f,
                    const std::vector<std::vector<double>>& per_seq, size_t n,
                    std::vector<float>& out) {
  out.assign(n, 0.0f);
  for (size_t k = 0; k < idx.size(); ++k) {
    for (int64_t j = 0; j < rs[idx[k]].n(); ++j) {
      out[offs[k] + j] = static_cast<float>(f * per_seq[k][j]);
    }
  }
}

}  // namespace

// A minibatch's loss metrics as sums over ranks: each rank contributes its part weighted by
// its share of the global aggregation (sequences or tokens), so the totals are the metrics of
// the whole minibatch. On one rank the weights are 1.
struct Trainer::State::MinibatchSums {
  enum { kLive, kTokens, kLoss, kPg, kKl, kClipLow, kClipHigh, kDual, kRatio, kMasked, kN };
  std::array<double, kN> v{};
  std::array<double, 2> max{};  // ratio_max, non-finite loss flag

  void set(const LossMetrics& lm, int64_t live, bool token_weighted) {
    const double w = token_weighted ? double(lm.tokens) : double(live), t = double(lm.tokens);
    v = {double(live), t, lm.loss * w, lm.pg_loss * w, lm.kl * t, lm.clip_low_frac * t,
         lm.clip_high_frac * t, lm.dual_clip_frac * t, lm.ratio_mean * t, double(lm.masked_seqs)};
    max = {lm.ratio_max, std::isfinite(lm.loss) ? 0.0 : 1.0};
  }
  // Another micro-batch's sums in.
  void add(const MinibatchSums& o) {
    for (size_t i = 0; i < v.size(); ++i) v[i] += o.v[i];
    for (size_t i = 0; i < max.size(); ++i) max[i] = std::max(max[i], o.max[i]);
  }
  void allreduce() {
    dist::allreduce_sum(v.data(), v.size(), "minibatch loss sums");
    dist::allreduce_max(max.data(), max.size(), "minibatch loss max");
  }
  double total(bool token_weighted) const { return token_weighted ? v[kTokens] : v[kLive]; }
  // Global metrics after the sums (call on every rank).
  LossMetrics global(bool token_weighted) const {
    LossMetrics g;
    const double W = total(token_weighted), T = v[kTokens];
    if (W > 0) g.loss = v[kLoss] / W, g.pg_loss = v[kPg] / W;
    if (T > 0) {
      g.kl = v[kKl] / T, g.clip_low_frac = v[kClipLow] / T, g.clip_high_frac = v[kClipHigh] / T;
      g.dual_clip_frac = v[kDual] / T, g.ratio_mean = v[kRatio] / T;
    }
    g.ratio_max = max[0];
    g.tokens = static_cast<int64_t>(T);
    g.masked_seqs = static_cast<int64_t>(v[kMasked]);
    if (max[1] > 0) g.loss = std::nan("");
    return g;
  }
};

uint64_t Trainer::State::dropout_seed(int it, const StepTotals& t, uint64_t part) const {
  return cfg.seed * 0x9E3779B97F4A7C15ULL + uint64_t(step) * 1000003ULL + uint64_t(it) * 7919ULL +
         uint64_t(t.updates + t.skipped) + part * 0x632BE59BD9B4E019ULL;
}

void Trainer::State::update_minibatch(std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                                      const std::vector<std::vector<double>>& adv, int it,
                                      const LossConfig& lc, const PassOptions& po, double lr,
                                      StepTotals& t) {
  stall_before_update(step + 1);
  const bool token_weighted = lc.agg == LossAgg::kTokenMean || lc.agg == LossAgg::kBnpo;
  update->begin();
  MinibatchSums sums;
  double grad_scale = 1.0;
  if (cfg.grpo.micro_batch_size > 0) {
    grad_scale = update_micro_batches(rs, idx, adv, it, lc, po, token_weighted, t, sums);
  } else {
    // LoRA dropout in this update's forward and backward only (policy/lora.h); a mask per
    // minibatch, the same on a resume.
    std::optional<policy::LoraDropoutScope> dropout;
    if (cfg.lora.dropout > 0 && !idx.empty()) {
      dropout.emplace(policy->params().data(), dropout_seed(it, t, 0));
    }
    Minibatch mb;
    mb.token_weighted = token_weighted;
    minibatch_forward(rs, idx, adv, it, lc, po, t, mb);
    if (!idx.empty()) {
      sums.set(mb.lm, static_cast<int64_t>(idx.size()) - mb.lm.masked_seqs, token_weighted);
    }
    sums.allreduce();
    double mtp_global = mb.mtp_count;
    if (cfg.grpo.mtp_weight > 0) dist::allreduce_sum(&mtp_global, 1, "MTP row counts");
    const double W = sums.total(token_weighted);
    const double f = W > 0 && !idx.empty() ? mb.own(idx.size()) / W : 0.0;
    minibatch_backward(rs, idx, lc, f, mtp_global, t, mb, update->ready());
  }
  const LossMetrics gm = sums.global(token_weighted);
  const train::UpdateResult u = update->apply(gm.loss, lr, step + 1, grad_scale);
  if (u.skipped) {
    ++t.skipped;
    return;
  }
  ++t.updates;
  t.grad_norm_sum += u.grad_norm;
  t.sum.add(gm);
}

// The global total of the aggregation is known only after every part's forward (and every
// rank's), so each part's backward weighs its terms by its own share of it unnormalised (its
// tokens or live sequences) and the summed gradients are divided by the total after. Only the
// last part's backward starts the gradient sums over ranks: the gradients are final there.
double Trainer::State::update_micro_batches(std::vector<Rollout>& rs,
                                            const std::vector<size_t>& idx,
                                            const std::vector<std::vector<double>>& adv, int it,
                                            const LossConfig& lc, const PassOptions& po,
                                            bool token_weighted, StepTotals& t,
                                            MinibatchSums& sums) {
  const size_t size = static_cast<size_t>(cfg.grpo.micro_batch_size);
  for (size_t a = 0; a < idx.size(); a += size) {
    const std::vector<size_t> part(idx.begin() + a,
                                   idx.begin() + std::min(idx.size(), a + size));
    // A mask of its own for each part: the masks follow a token's row in the forward's batch.
    std::optional<policy::LoraDropoutScope> dropout;
    if (cfg.lora.dropout > 0) {
      dropout.emplace(policy->params().data(), dropout_seed(it, t, a / size));
    }
    Minibatch mb;
    mb.token_weighted = token_weighted;
    minibatch_forward(rs, part, adv, it, lc, po, t, mb);
    MinibatchSums s;
    s.set(mb.lm, static_cast<int64_t>(part.size()) - mb.lm.masked_seqs, token_weighted);
    sums.add(s);
    const bool last = a + size >= idx.size();
    minibatch_backward(rs, part, lc, mb.own(part.size()), 0.0, t, mb,
                       last ? update->ready() : nullptr);
  }
  if (idx.empty()) update->no_backward();
  sums.allreduce();
  const double W = sums.total(token_weighted);
  return W > 0 ? 1.0 / W : 0.0;
}

// This rank's backward with its share f of the global aggregation (of the minibatch's live
// sequences or tokens over every rank), the MTP term over mtp_global rows, the balance losses.
void Trainer::State::minibatch_backward(std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                                        const LossConfig& lc, double f, double mtp_global,
                                        StepTotals& t, Minibatch& mb,
                                        const policy::Model<float>::GradsReady* ready) {
  const GrpoConfig& g = cfg.grpo;
  policy::Activations<float>& acts = update_acts;
  if (idx.empty()) {
    if (cfg.parallel.expert_parallel()) {
      policy->backward_idle(acts, update->ready());
    } else {
      update->no_backward();
    }
    return;
  }
  std::vector<float> dl, de;
  scatter_scaled(rs, idx, mb.offs, f, mb.dlogp, acts.logprob.size(), dl);
  if (lc.entropy_coef != 0) {
    scatter_scaled(rs, idx, mb.offs, f, mb.dentropy, acts.logprob.size(), de);
  }
  std::vector<float> dh;
  if (g.mtp_weight > 0 && mtp_global > 0) {
    double nll = 0;
    dh = mtp_term(acts, mb.mtp_keep, mtp_global, nll);
    t.mtp[0] += nll;
    t.mtp[1] += mb.mtp_count;
  }
  // The sequence-wise balance loss is a mean over this rank's sequences (its share f); the
  // device-level ones have global statistics already (the whole weight on every rank).
  const policy::BalanceWeights balance{.seq = g.aux_loss_weight * f, .batch = g.aux_loss_weight};
  policy->backward(acts, dl.data(), de.empty() ? nullptr : de.data(), balance,
                   dh.empty() ? nullptr : dh.data(), ready);
}

}  // namespace aha::grpo
