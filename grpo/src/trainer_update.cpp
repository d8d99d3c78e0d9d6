// Learning from a batch of rollouts: old and reference logprobs, advantages, and num_iterations
// passes of minibatch updates. Online steps and rollout files (--rollouts) both come here, so
// a replayed step makes exactly the update the online step made.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/weight_cache.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace {

using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Packs rollouts rs[idx...] into one batch and runs a forward; logp[k] receives rollout
// idx[k]'s completion-token logprobs, offs[k] the packed position predicting its first token.
struct PackedForward {
  const policy::Model<float>& model;
  double temperature = 1.0;
  bool replay_routing = false;  // keep routing: force the experts recorded at sampling
  bool keep_mask = false;       // keep sampling mask: renormalise over the recorded kept sets
  // parallel.ep: experts sharded, every rank in step (Trainer::State::fill_logprobs evens
  // out the ranks' numbers of scoring forwards).
  bool expert_parallel = false;

  void run(const std::vector<Rollout>& rs, const std::vector<size_t>& idx, bool keep_acts,
           bool entropy, policy::Activations<float>& acts, std::vector<std::vector<float>>& logp,
           std::vector<int64_t>& offs) const {
    std::vector<std::vector<int32_t>> packed;
    for (size_t i : idx) {
      packed.push_back(rs[i].prompt_ids);
      packed.back().insert(packed.back().end(), rs[i].completion_ids.begin(), rs[i].completion_ids.end());
    }
    policy::Batch batch = policy::Batch::from_sequences(packed);
    offs.assign(idx.size(), 0);
    for (size_t k = 0; k < idx.size(); ++k) {
      offs[k] = batch.seq_starts[k] + static_cast<int64_t>(rs[idx[k]].prompt_ids.size()) - 1;
    }
    policy::ForwardOptions fo;
    fo.temperature = temperature;
    fo.keep_activations = keep_acts;
    fo.entropy = entropy;
    fo.expert_parallel = expert_parallel;
    std::vector<std::vector<int32_t>> replay;
    if (replay_routing) {
      replay = routing_of(rs, idx, batch);
      if (!replay.empty()) fo.replay_topk = &replay;
    }
    std::vector<const std::vector<int32_t>*> kept;
    if (keep_mask) {
      kept.assign(static_cast<size_t>(batch.n_tokens()), nullptr);
      for (size_t k = 0; k < idx.size(); ++k) {
        const Rollout& r = rs[idx[k]];
        for (size_t t = 0; t < r.kept_ids.size(); ++t) {
          if (!r.kept_ids[t].empty()) kept[offs[k] + t] = &r.kept_ids[t];
        }
      }
      fo.kept_ids = &kept;
    }
    model.forward(batch, fo, acts);
    logp.assign(idx.size(), {});
    for (size_t k = 0; k < idx.size(); ++k) {
      logp[k].assign(acts.logprob.begin() + offs[k], acts.logprob.begin() + offs[k] + rs[idx[k]].n());
    }
  }

  // Recorded experts for every position that went through the model at sampling; the last
  // token of each sequence, and rollouts without a record, route afresh (-1). Empty when no
  // rollout of the batch has a record.
  std::vector<std::vector<int32_t>> routing_of(const std::vector<Rollout>& rs,
                                               const std::vector<size_t>& idx,
                                               const policy::Batch& batch) const {
    size_t layers = 0;
    for (size_t i : idx) layers = std::max(layers, rs[i].routing.size());
    std::vector<std::vector<int32_t>> replay(layers);
    const std::vector<int64_t> widths = model.replay_widths();
    AHA_CHECK(layers <= widths.size(), "rollouts carry routing of ", layers, " layers, the model has ",
              widths.size());
    for (size_t k = 0; k < idx.size(); ++k) {
      const auto& r = rs[idx[k]].routing;
      for (size_t l = 0; l < layers; ++l) {
        if (!r.empty()) replay[l].insert(replay[l].end(), r[l].begin(), r[l].end());
        replay[l].resize(static_cast<size_t>(batch.seq_starts[k + 1] * widths[l]), -1);
      }
    }
    return replay;
  }
};

std::vector<size_t> range_of(size_t a, size_t b) {
  std::vector<size_t> v;
  for (size_t i = a; i < b; ++i) v.push_back(i);
  return v;
}

// How far the engine's logprobs are from the training forward's (same weights), into
// acc = {sum, tokens}: with the sampling mask kept, against the sampling distribution itself.
void add_mismatch(const Rollout& r, const std::vector<float>& lp, double temperature,
                  bool keep_mask, double acc[2]) {
  const std::vector<float>& rec = keep_mask ? r.sampling_dist_logprobs : r.sampled_logprobs;
  if (!(keep_mask || temperature == 1.0) || rec.size() != lp.size()) return;
  for (size_t j = 0; j < lp.size(); ++j) {
    if (!r.in_loss(static_cast<int64_t>(j))) continue;  // observations: no logprob
    acc[0] += std::abs(double(rec[j]) - lp[j]);
    acc[1] += 1;
  }
}

// Every rank needs the step's global expert loads for an identical routing-bias update (a rank
// that trained on nothing contributes zeros).
void sum_loads_over_ranks(const policy::ModelConfig& c, std::vector<std::vector<int64_t>>& loads) {
  int moe = 0;
  for (int l = 0; l < c.num_hidden_layers; ++l) moe += c.is_moe_layer(l);
  if (moe == 0 || c.n_routed_experts == 0) return;
  if (loads.empty()) loads.assign(moe, std::vector<int64_t>(c.n_routed_experts, 0));
  std::vector<int64_t> flat;
  for (const auto& l : loads) flat.insert(flat.end(), l.begin(), l.end());
  dist::allreduce_sum(flat.data(), flat.size(), "expert loads");
  for (size_t l = 0; l < loads.size(); ++l) {
    std::copy_n(flat.begin() + l * loads[l].size(), loads[l].size(), loads[l].begin());
  }
}

// The step's loss metrics: means over its `updates` optimizer steps (ratio_max: the maximum).
void put_loss_metrics(const LossMetrics& sum, double updates, Json& m) {
  m["loss"] = sum.loss / updates;
  m["pg_loss"] = sum.pg_loss / updates;
  m["kl"] = sum.kl / updates;
  m["clip_low_frac"] = sum.clip_low_frac / updates;
  m["clip_high_frac"] = sum.clip_high_frac / updates;
  m["dual_clip_frac"] = sum.dual_clip_frac / updates;
  m["ratio_mean"] = sum.ratio_mean / updates;
  m["ratio_max"] = sum.ratio_max;
  m["masked_seqs"] = sum.masked_seqs;
}

// DeepSeek-V2's device-level and communication balance losses of the step: their mean over
// the first pass's minibatches. Under parallel.ep each minibatch's statistics cover every
// rank's tokens, so the ranks with sequences hold the same value and the others 0 (losses are
// >= 0): the maximum over ranks is it. Data parallel alone: the largest rank's own value.
void put_balance_losses(std::vector<double>& balance, Json& m) {
  dist::allreduce_max(balance.data(), balance.size(), "balance losses");
  double sums[2] = {0, 0};
  for (size_t i = 0; i + 1 < balance.size(); i += 2) sums[0] += balance[i], sums[1] += balance[i + 1];
  const double n = std::max<double>(1.0, double(balance.size() / 2));
  m["device_balance_loss"] = sums[0] / n;
  m["comm_balance_loss"] = sums[1] / n;
}

}  // namespace

LossConfig Trainer::State::loss_config() const {
  const GrpoConfig& g = cfg.grpo;
  LossConfig lc;
  lc.eps_low = g.eps_low;
  lc.eps_high = g.eps_high;
  lc.dual_clip = g.dual_clip;
  lc.level = g.ratio_level;
  lc.agg = g.loss_agg;
  lc.kl = g.kl_estimator;
  lc.beta = g.kl_in_reward || !has_ref() ? 0.0 : g.beta;
  lc.max_completion_len = cfg.sampling.max_new_tokens;
  lc.offpolicy_delta = g.offpolicy_delta;
  lc.policy = g.policy_loss;
  lc.entropy_coef = entropy_coef;
  lc.sapo_tau_pos = g.sapo_tau_pos;
  lc.sapo_tau_neg = g.sapo_tau_neg;
  return lc;
}

void Trainer::State::fill_logprobs(std::vector<Rollout>& rs, const PassOptions& po,
                                   double mismatch[2], Json& m) {
  const size_t chunk = cfg.grpo.minibatch_size > 0 ? static_cast<size_t>(cfg.grpo.minibatch_size) : 16;
  const bool ep = cfg.parallel.expert_parallel();
  PackedForward pol{*policy, po.temperature, po.replay_routing, po.keep_mask, ep};
  PackedForward rf{ref ? *ref : *policy, po.temperature, false, po.keep_mask, ep};
  // The forwards to make, chunk by chunk: pi_old's and the reference's.
  std::vector<std::vector<size_t>> olds, refs;
  for (size_t a = 0; a < rs.size(); a += chunk) {
    std::vector<size_t> need_old, need_ref;
    for (size_t i : range_of(a, std::min(rs.size(), a + chunk))) {
      if (rs[i].n() == 0) continue;  // an engine error: nothing to score
      // IS correction of a rollout file: its logprobs are the sampler's; the trainer's own
      // old logprobs are computed here.
      if (cfg.grpo.is_correction != IsCorrection::kNone && !rs[i].old_logprobs.empty() &&
          rs[i].sampled_logprobs.empty()) {
        rs[i].sampled_logprobs = std::move(rs[i].old_logprobs);
        rs[i].old_logprobs.clear();
      }
      const bool in_update = po.old_in_update && rs[i].learn;
      if (rs[i].old_logprobs.empty() && !in_update) need_old.push_back(i);
      if (has_ref() && rs[i].ref_logprobs.empty()) need_ref.push_back(i);
    }
    if (!need_old.empty()) olds.push_back(std::move(need_old));
    if (!need_ref.empty()) refs.push_back(std::move(need_ref));
  }
  // Expert parallel: every rank makes as many forwards of each model as the rank with the
  // most; a rank out of rollouts serves the others' rows with its experts.
  size_t separate = 0;  // sequences whose pi_old needs a forward of its own
  for (const auto& o : olds) separate += o.size();
  m["pi_old_forwards"] = separate;
  double counts[2] = {double(olds.size()), double(refs.size())};
  if (ep) dist::allreduce_max(counts, 2, "scoring chunk counts");
  // No weight changes until the update: under bf16 each chunk's products reuse one packed copy
  // of every weight instead of packing it again (the same values, so the same logprobs).
  const WeightCache policy_weights(policy->params().data(),
                                   static_cast<int64_t>(policy->params().size()));
  std::optional<WeightCache> ref_weights;
  if (ref) ref_weights.emplace(ref->params().data(), static_cast<int64_t>(ref->params().size()));
  policy::Activations<float> acts;
  std::vector<std::vector<float>> lp;
  std::vector<int64_t> offs;
  for (size_t k = 0; k < size_t(counts[0]); ++k) {
    if (k >= olds.size()) {
      policy->forward_idle(acts);
      continue;
    }
    const std::vector<size_t>& need_old = olds[k];
    pol.run(rs, need_old, false, false, acts, lp, offs);
    for (size_t q = 0; q < need_old.size(); ++q) {
      Rollout& r = rs[need_old[q]];
      r.old_logprobs = lp[q];
      add_mismatch(r, lp[q], po.temperature, po.keep_mask, mismatch);
    }
  }
  for (size_t k = 0; k < size_t(counts[1]); ++k) {
    if (k >= refs.size()) {
      ref->forward_idle(acts);  // parallel.ep has no LoRA, so a reference of its own
      continue;
    }
    std::optional<policy::LoraOffScope> base;
    if (ref_is_base) base.emplace(policy->params().data());
    rf.run(rs, refs[k], false, false, acts, lp, offs);
    for (size_t q = 0; q < refs[k].size(); ++q) rs[refs[k][q]].ref_logprobs = lp[q];
  }
  if (cfg.grpo.is_correction != IsCorrection::kNone) importance_weights(rs, po, m);
}

// pi_old is the policy that sampled, and a step of one update starts from it: that update's
// forward is pi_old's forward, so it is not made twice (as TRL does for num_iterations = 1),
// and the ratio is exactly 1, as on-policy it should be (a forward of its own packed the
// rollouts otherwise, and a token in a few hundred differed in its last bit). Not when pi_old
// is read before the update (a KL in the reward, IS weights), when the update's forward differs
// from pi_old's (LoRA dropout), or when the step makes several updates.
bool Trainer::State::old_in_update(int64_t learning) const {
  const GrpoConfig& g = cfg.grpo;
  return g.num_iterations == 1 && (g.minibatch_size == 0 || g.minibatch_size >= learning) &&
         !g.kl_in_reward && g.kl_reward_coef == 0 && g.is_correction == IsCorrection::kNone &&
         cfg.lora.dropout == 0;
}

std::vector<std::vector<double>> Trainer::State::advantages(const std::vector<Rollout>& rs) const {
  const GrpoConfig& g = cfg.grpo;
  std::vector<double> shaped(rs.size());
  std::vector<int64_t> group(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    shaped[i] = rs[i].reward;
    group[i] = rs[i].group;
    const double kl_coef = g.kl_in_reward ? g.beta : g.kl_reward_coef;
    if (kl_coef > 0 && has_ref() && !rs[i].ref_logprobs.empty()) {
      double kl = 0;
      for (int64_t j = 0; j < rs[i].n(); ++j) {
        if (rs[i].in_loss(j)) kl += double(rs[i].old_logprobs[j]) - rs[i].ref_logprobs[j];
      }
      shaped[i] -= kl_coef * kl;
    }
  }
  std::vector<std::vector<double>> adv(rs.size());
  if (g.advantage == AdvantageMode::kProcess) {
    // Outcome-only completions count as one step that ends at their last token.
    std::vector<std::vector<double>> steps(rs.size());
    std::vector<std::vector<int64_t>> ends(rs.size());
    std::vector<int64_t> n(rs.size());
    for (size_t i = 0; i < rs.size(); ++i) {
      n[i] = rs[i].n();
      if (rs[i].step_ends.empty()) {
        steps[i] = {shaped[i]};
        ends[i] = {n[i]};
      } else {
        steps[i] = rs[i].step_rewards;
        ends[i] = rs[i].step_ends;
      }
    }
    adv = process_advantages(steps, ends, n, group);
  } else {
    AdvantageConfig ac;
    ac.mode = g.advantage;
    ac.scale = g.scale_rewards;
    // Groups live whole on one rank, but batch-wide statistics (scale_rewards = batch,
    // REINFORCE++) need every rank's rewards: all ranks compute all advantages alike.
    int64_t first = 0;
    if (dist::active()) {
      first = dist::span_in_all(static_cast<int64_t>(rs.size()), "reward counts").first;
      shaped = dist::allgather(shaped, "rewards");
      const std::vector<double> groups = dist::allgather(std::vector<double>(group.begin(), group.end()), "reward groups");
      group.resize(groups.size());
      for (size_t k = 0; k < groups.size(); ++k) group[k] = static_cast<int64_t>(groups[k]);
    }
    std::vector<double> a = compute_advantages(shaped, group, ac);
    a = std::vector<double>(a.begin() + first, a.begin() + first + rs.size());
    for (size_t i = 0; i < rs.size(); ++i) adv[i].assign(rs[i].n(), a[i]);
  }
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].advantage) adv[i].assign(rs[i].n(), *rs[i].advantage);
  }
  return adv;
}

void Trainer::State::learn(std::vector<Rollout>& rs, Json& m) {
  const GrpoConfig& g = cfg.grpo;
  auto t0 = Clock::now();
  PassOptions po;
  po.temperature = cfg.sampling.greedy() ? 1.0 : cfg.sampling.temperature;
  po.replay_routing = g.keep_routing && !policy->replay_widths().empty();
  po.keep_mask = g.keep_sampling_mask;
  std::vector<size_t> train_idx;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].n() > 0 && rs[i].learn) train_idx.push_back(i);
  }
  // Data parallel: the step's sequences in global order are the ranks' lists one after another;
  // global minibatch k is [k * mb, (k + 1) * mb) of that order and each rank runs its part.
  const dist::Span span = dist::span_in_all(static_cast<int64_t>(train_idx.size()), "sequence counts");
  const int64_t total = span.total, mine_from = span.first;
  const int64_t mine_to = mine_from + static_cast<int64_t>(train_idx.size());
  po.old_in_update = old_in_update(total);
  StepTotals t;
  fill_logprobs(rs, po, t.mismatch, m);
  auto t1 = Clock::now();
  std::vector<std::vector<double>> adv = advantages(rs);
  for (size_t i = 0; i < rs.size(); ++i) {
    double s = 0;
    for (double a : adv[i]) s += a;
    rs[i].logged_advantage = adv[i].empty() ? 0.0 : s / double(adv[i].size());
  }
  const LossConfig lc = loss_config();
  const int64_t mb = g.minibatch_size > 0 ? g.minibatch_size : std::max<int64_t>(1, total);
  const double lr = cfg.schedule.at(step);
  for (int it = 0; it < g.num_iterations && total > 0; ++it) {
    for (int64_t a = 0; a < total; a += mb) {
      const int64_t lo = std::max(a, mine_from), hi = std::min(a + mb, mine_to);
      std::vector<size_t> idx;
      for (int64_t k = lo; k < hi; ++k) idx.push_back(train_idx[k - mine_from]);
      update_minibatch(rs, idx, adv, it, lc, po, lr, t);
    }
  }
  if (t.mismatch[1] > 0) m["logprob_mismatch"] = t.mismatch[0] / t.mismatch[1];
  dist::allreduce_sum(t.entropy, 2, "entropy sums");
  if (g.mtp_weight > 0) {
    dist::allreduce_sum(t.mtp, 2, "MTP loss sums");
    m["mtp_loss"] = t.mtp[1] > 0 ? t.mtp[0] / t.mtp[1] : 0.0;
  }
  if (dist::active() && g.num_iterations > 0) sum_loads_over_ranks(policy->config(), t.loads);
  if (g.bias_update_gamma > 0 && !t.loads.empty()) policy->update_routing_bias(t.loads, g.bias_update_gamma);
  auto t2 = Clock::now();
  const double u = t.updates > 0 ? double(t.updates) : 1.0;
  put_loss_metrics(t.sum, u, m);
  m["entropy"] = t.entropy[1] > 0 ? t.entropy[0] / t.entropy[1] : 0.0;
  m["entropy_coef"] = entropy_coef;  // the weight this step used
  if (g.entropy_target >= 0 && t.entropy[1] > 0) {  // every rank sees the same summed entropy
    entropy_coef = std::max(
        0.0, entropy_coef + g.entropy_coef_lr * (g.entropy_target - m["entropy"].get<double>()));
  }
  m["time_ref"] = secs(t0, t1);
  m["time_train"] = secs(t1, t2);
  m["lr"] = lr;
  m["grad_norm"] = t.grad_norm_sum / u;
  m["updates"] = t.updates;
  m["skipped_updates"] = t.skipped;
  m["sequences"] = total;
  if (!t.loads.empty()) m["expert_load"] = t.loads;
  if (policy->config().has_device_balance()) put_balance_losses(t.balance, m);
}

namespace {

// The policy tokens' entropies into sum_count {sum, count} (the step's mean entropy).
template <typename Sums>
void add_entropy(const Rollout& r, const float* entropy, Sums& sum_count) {
  for (int64_t j = 0; j < r.n(); ++j) {
    if (!r.in_loss(j)) continue;
    sum_count[0] += entropy[j];
    sum_count[1] += 1.0;
  }
}

}  // namespace

// The forward over this rank's rows idx (an idle pass for the other ranks' rows under
// parallel.ep), the loss terms and their gradients; on the first iteration also the step's
// entropy, expert loads and balance losses.
void Trainer::State::minibatch_forward(std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                                       const std::vector<std::vector<double>>& adv, int it,
                                       const LossConfig& lc, const PassOptions& po,
                                       StepTotals& t, Minibatch& mb) {
  const bool ep = cfg.parallel.expert_parallel();
  policy::Activations<float>& acts = update_acts;
  if (idx.empty()) {
    if (ep) policy->forward_idle(acts);  // the other ranks' rows still visit this rank's experts
    if (it == 0 && policy->config().has_device_balance()) {
      t.balance.insert(t.balance.end(), {0.0, 0.0});
    }
    return;
  }
  PackedForward pol{*policy, po.temperature, po.replay_routing, po.keep_mask, ep};
  pol.run(rs, idx, true, it == 0 || lc.entropy_coef != 0, acts, mb.lp, mb.offs);
  std::vector<SeqTerms> terms(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    Rollout& r = rs[idx[k]];
    if (po.old_in_update && r.old_logprobs.empty()) {
      r.old_logprobs = mb.lp[k];
      add_mismatch(r, mb.lp[k], po.temperature, po.keep_mask, t.mismatch);
    }
    terms[k] = {mb.lp[k].data(), r.old_logprobs.data(),
                has_ref() ? r.ref_logprobs.data() : nullptr, adv[idx[k]].data(), r.n(),
                lc.entropy_coef != 0 ? acts.entropy.data() + mb.offs[k] : nullptr,
                r.is_weights.empty() ? nullptr : r.is_weights.data(),
                r.loss_mask.empty() ? nullptr : r.loss_mask.data()};
    if (it == 0) add_entropy(r, acts.entropy.data() + mb.offs[k], t.entropy);
  }
  if (it == 0) accumulate_loads(t.loads, policy->expert_loads(acts));
  if (it == 0 && policy->config().has_device_balance()) {
    t.balance.insert(t.balance.end(), {acts.device_loss, acts.comm_loss});
  }
  mb.lm = grpo_loss(terms, lc, mb.dlogp, mb.dentropy);
  if (cfg.grpo.mtp_weight > 0) {
    mb.mtp_keep =
        mtp_rows(rs, idx, mb.offs, static_cast<int64_t>(acts.logprob.size()), mb.mtp_count);
  }
}

void accumulate_loads(std::vector<std::vector<int64_t>>& into, std::vector<std::vector<int64_t>> l) {
  if (into.empty()) {
    into = std::move(l);
    return;
  }
  for (size_t x = 0; x < l.size(); ++x) {
    for (size_t e = 0; e < l[x].size(); ++e) into[x][e] += l[x][e];
  }
}

}  // namespace aha::grpo
