// One GRPO step: sample, score, compute advantages, update, log.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <map>

#include "aha/core/error.h"
#include "aha/policy/optimizer.h"
#include "aha/rollout/engine.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace {

using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One completion as a training sequence.
struct Seq {
  size_t comp = 0;                // index into the completions
  std::vector<int32_t> tokens;    // prompt + completion
  int64_t prompt_len = 0;
  std::vector<float> old_logp, ref_logp;
  std::vector<int32_t> replay;    // [moe layers] flattened per layer below
  double advantage = 0;
  bool train = true;
  int64_t n() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
};

// Packs seqs[idx...] and runs a forward; fills logp[i] with each completion's token logprobs.
void forward_completions(const policy::Model<float>& model, std::vector<Seq>& seqs,
                         const std::vector<size_t>& idx, double temperature, bool keep,
                         bool entropy, const rollout::Routing* const* replay_of,
                         policy::Activations<float>& acts, std::vector<std::vector<float>>& logp,
                         std::vector<int64_t>& offsets) {
  std::vector<std::vector<int32_t>> packed;
  for (size_t i : idx) packed.push_back(seqs[i].tokens);
  policy::Batch batch = policy::Batch::from_sequences(packed);
  policy::ForwardOptions fo;
  fo.temperature = temperature;
  fo.keep_activations = keep;
  fo.entropy = entropy;
  std::vector<std::vector<int32_t>> replay;
  if (replay_of != nullptr) {
    const int K = model.config().num_experts_per_tok;
    for (size_t k = 0; k < idx.size(); ++k) {
      const rollout::Routing& r = *replay_of[idx[k]];
      if (replay.empty()) replay.resize(r.size());
      for (size_t l = 0; l < r.size(); ++l) {
        replay[l].insert(replay[l].end(), r[l].begin(), r[l].end());
        // The last token was never fed at sampling: route it afresh.
        replay[l].resize(static_cast<size_t>(batch.seq_starts[k + 1]) * K, -1);
      }
    }
    fo.replay_topk = &replay;
  }
  model.forward(batch, fo, acts);
  logp.assign(idx.size(), {});
  offsets.assign(idx.size(), 0);
  for (size_t k = 0; k < idx.size(); ++k) {
    const Seq& s = seqs[idx[k]];
    offsets[k] = batch.seq_starts[k] + s.prompt_len - 1;  // position predicting completion[0]
    logp[k].assign(acts.logprob.begin() + offsets[k], acts.logprob.begin() + offsets[k] + s.n());
  }
}


double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

}  // namespace

Json Trainer::State::run_step() {
  const GrpoConfig& g = cfg.grpo;
  const double temp = cfg.sampling.greedy() ? 1.0 : cfg.sampling.temperature;
  Json m = Json::object();
  auto t0 = Clock::now();

  // ---- rollout
  std::vector<int64_t> picked = cursor->next(g.prompts_per_step);
  std::vector<std::string> prompt_text;
  std::vector<rollout::Request> reqs;
  for (int64_t ex : picked) {
    Json fields = data[ex].row;
    fields["prompt"] = fields.value("question", "");
    prompt_text.push_back(templ->render(fields));
    rollout::Request r;
    r.prompt = tok->encode(prompt_text.back(), true);
    r.n = g.group_size;
    r.params = cfg.sampling;
    if (r.params.stop_token_ids.empty() && tok->eos_id()) r.params.stop_token_ids = {*tok->eos_id()};
    reqs.push_back(std::move(r));
  }
  rollout::EngineOptions eo;
  eo.seed = cfg.seed * 1000003ULL + static_cast<uint64_t>(step);
  eo.max_batch = g.max_batch;
  eo.record_routing = g.keep_routing && policy->config().n_routed_experts > 0;
  const policy::Tokenizer* t = tok.get();
  eo.detokenize = [t](const std::vector<int32_t>& ids) { return t->decode(policy::known_ids(*t, ids)); };
  auto comps = rollout::Engine(*policy, eo).generate(reqs);
  auto t1 = Clock::now();

  // ---- rewards
  std::vector<std::string> texts(comps.size());
  std::vector<rewards::Sample> samples(comps.size());
  for (size_t i = 0; i < comps.size(); ++i) {
    texts[i] = tok->decode_utf8(policy::known_ids(*tok, comps[i].ids), true);
    const int64_t p = comps[i].prompt_index;
    samples[i] = {prompt_text[p], texts[i], &data[picked[p]].row,
                  static_cast<int64_t>(comps[i].ids.size())};
  }
  auto scored = rewards.score_batch(samples);
  auto t2 = Clock::now();

  // ---- sequences, old and reference logprobs
  std::vector<Seq> seqs;
  std::vector<double> reward(comps.size());
  std::vector<int64_t> group(comps.size());
  for (size_t i = 0; i < comps.size(); ++i) {
    const auto& c = comps[i];
    reward[i] = c.finish_reason == "error" ? std::nan("") : scored[i].reward;
    group[i] = c.prompt_index;
    if (c.ids.empty()) continue;
    Seq s;
    s.comp = i;
    s.tokens = reqs[c.prompt_index].prompt;
    s.prompt_len = static_cast<int64_t>(s.tokens.size());
    s.tokens.insert(s.tokens.end(), c.ids.begin(), c.ids.end());
    s.train = !(g.mask_truncated && c.finish_reason == "length");
    seqs.push_back(std::move(s));
  }
  int64_t dropped_groups = 0;
  if (g.dynamic_sampling) {
    std::map<int64_t, std::pair<double, double>> range;
    for (size_t i = 0; i < reward.size(); ++i) {
      auto [it, fresh] = range.try_emplace(group[i], reward[i], reward[i]);
      if (!fresh) it->second = {std::min(it->second.first, reward[i]), std::max(it->second.second, reward[i])};
    }
    for (auto& s : seqs) {
      auto r = range[group[s.comp]];
      if (r.first == r.second) s.train = false;
    }
    for (auto& [gi, r] : range) dropped_groups += r.first == r.second;
  }
  std::vector<const rollout::Routing*> replay_of(seqs.size(), nullptr);
  for (size_t i = 0; i < seqs.size(); ++i) replay_of[i] = &comps[seqs[i].comp].routing;
  const rollout::Routing* const* replay = eo.record_routing ? replay_of.data() : nullptr;
  const size_t chunk = g.minibatch_size > 0 ? static_cast<size_t>(g.minibatch_size) : 16;
  policy::Activations<float> acts;
  std::vector<std::vector<float>> lp;
  std::vector<int64_t> offs;
  double mismatch = 0;
  int64_t mismatch_n = 0;
  for (size_t a = 0; a < seqs.size(); a += chunk) {
    std::vector<size_t> idx;
    for (size_t i = a; i < std::min(seqs.size(), a + chunk); ++i) idx.push_back(i);
    forward_completions(*policy, seqs, idx, temp, false, false, replay, acts, lp, offs);
    for (size_t k = 0; k < idx.size(); ++k) {
      Seq& s = seqs[idx[k]];
      s.old_logp = lp[k];
      const auto& c = comps[s.comp];
      for (int64_t j = 0; j < s.n(); ++j) {
        mismatch += std::abs(double(c.policy_logprobs[j]) - (temp == 1.0 ? lp[k][j] : c.policy_logprobs[j]));
        ++mismatch_n;
      }
    }
    if (ref) {
      forward_completions(*ref, seqs, idx, temp, false, false, nullptr, acts, lp, offs);
      for (size_t k = 0; k < idx.size(); ++k) seqs[idx[k]].ref_logp = lp[k];
    }
  }
  auto t3 = Clock::now();

  // ---- advantages
  LossConfig lc;
  lc.eps_low = g.eps_low;
  lc.eps_high = g.eps_high;
  lc.dual_clip = g.dual_clip;
  lc.level = LossConfig::parse_level(g.ratio_level);
  lc.agg = LossConfig::parse_agg(g.loss_agg);
  lc.kl = LossConfig::parse_kl(g.kl_estimator);
  lc.beta = g.kl_in_reward || !ref ? 0.0 : g.beta;
  lc.max_completion_len = cfg.sampling.max_new_tokens;
  lc.offpolicy_delta = g.offpolicy_delta;
  std::vector<double> shaped = reward;
  if (g.kl_in_reward && ref) {
    for (const Seq& s : seqs) {
      double kl = 0;
      for (int64_t j = 0; j < s.n(); ++j) kl += double(s.old_logp[j]) - s.ref_logp[j];
      shaped[s.comp] -= g.beta * kl;
    }
  }
  AdvantageConfig ac;
  ac.mode = AdvantageConfig::parse_mode(g.advantage);
  ac.scale = AdvantageConfig::parse_scale(g.scale_rewards);
  std::vector<double> adv = compute_advantages(shaped, group, ac);
  for (Seq& s : seqs) s.advantage = adv[s.comp];

  // ---- updates
  std::vector<size_t> train_idx;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].train) train_idx.push_back(i);
  }
  const size_t mb = g.minibatch_size > 0 ? static_cast<size_t>(g.minibatch_size) : train_idx.size();
  LossMetrics agg_loss;
  double grad_norm_sum = 0, entropy_sum = 0;
  int64_t updates = 0, skipped = 0, entropy_n = 0;
  std::vector<std::vector<int64_t>> loads;
  const double lr = cfg.schedule.at(step);
  for (int it = 0; it < g.num_iterations && !train_idx.empty(); ++it) {
    for (size_t a = 0; a < train_idx.size(); a += mb) {
      std::vector<size_t> idx(train_idx.begin() + a, train_idx.begin() + std::min(train_idx.size(), a + mb));
      forward_completions(*policy, seqs, idx, temp, true, it == 0, replay, acts, lp, offs);
      std::vector<std::vector<double>> adv_tok(idx.size());
      std::vector<SeqTerms> terms(idx.size());
      for (size_t k = 0; k < idx.size(); ++k) {
        const Seq& s = seqs[idx[k]];
        adv_tok[k].assign(s.n(), s.advantage);
        terms[k] = {lp[k].data(), s.old_logp.data(), ref ? s.ref_logp.data() : nullptr,
                    adv_tok[k].data(), s.n()};
        if (it == 0) {
          for (int64_t j = 0; j < s.n(); ++j) entropy_sum += acts.entropy[offs[k] + j];
          entropy_n += s.n();
        }
      }
      if (it == 0) {
        // Expert loads summed over the step's first-pass minibatches.
        auto l = policy->expert_loads(acts);
        if (loads.empty()) {
          loads = std::move(l);
        } else {
          for (size_t x = 0; x < l.size(); ++x) {
            for (size_t e = 0; e < l[x].size(); ++e) loads[x][e] += l[x][e];
          }
        }
      }
      std::vector<std::vector<double>> dlogp;
      LossMetrics lm = grpo_loss(terms, lc, dlogp);
      std::vector<float> dl(acts.logprob.size(), 0.0f);
      for (size_t k = 0; k < idx.size(); ++k) {
        for (int64_t j = 0; j < seqs[idx[k]].n(); ++j) dl[offs[k] + j] = static_cast<float>(dlogp[k][j]);
      }
      policy->zero_grad();
      policy->backward(acts, dl.data(), g.aux_loss_weight);
      double norm = policy::clip_grad_norm(policy->table(), policy->grads().data(), cfg.optimizer.max_grad_norm);
      if (!std::isfinite(norm) || !std::isfinite(lm.loss)) {
        ++skipped;
        if (++nan_streak > g.max_nan_skips) {
          fail("stopping: ", nan_streak, " non-finite updates in a row at step ", step + 1);
        }
        db->event(step + 1, "warn", "nan_skip", "non-finite loss or gradient: update skipped");
        continue;
      }
      nan_streak = 0;
      opt->step(policy->params().data(), policy->grads().data(), lr);
      ++updates;
      grad_norm_sum += norm;
      agg_loss.loss += lm.loss;
      agg_loss.pg_loss += lm.pg_loss;
      agg_loss.kl += lm.kl;
      agg_loss.clip_low_frac += lm.clip_low_frac;
      agg_loss.clip_high_frac += lm.clip_high_frac;
      agg_loss.dual_clip_frac += lm.dual_clip_frac;
      agg_loss.ratio_mean += lm.ratio_mean;
      agg_loss.ratio_max = std::max(agg_loss.ratio_max, lm.ratio_max);
      agg_loss.masked_seqs += lm.masked_seqs;
    }
  }
  if (g.bias_update_gamma > 0 && !loads.empty()) policy->update_routing_bias(loads, g.bias_update_gamma);
  ++step;
  if (ref && g.ref_reset_every > 0 && step % g.ref_reset_every == 0) {
    ref->params() = policy->params();
    ref_changed = true;
  } else if (ref && g.ref_ema > 0) {
    auto& rp = ref->params();
    const auto& pp = policy->params();
    for (size_t i = 0; i < rp.size(); ++i) rp[i] = static_cast<float>((1 - g.ref_ema) * rp[i] + g.ref_ema * pp[i]);
    ref_changed = true;
  }
  auto t4 = Clock::now();

  // ---- metrics and log
  std::vector<double> finite_r, acc, lens;
  std::map<std::string, std::vector<double>> per_reward;
  int64_t truncated = 0, gen_tokens = 0;
  std::vector<runlog::RolloutRow> rows;
  for (size_t i = 0; i < comps.size(); ++i) {
    const auto& c = comps[i];
    if (std::isfinite(reward[i])) finite_r.push_back(reward[i]);
    for (const auto& [label, v] : scored[i].rewards) per_reward[label].push_back(v);
    auto it = scored[i].rewards.find(acc_label);
    int correct = it == scored[i].rewards.end() ? -1 : (it->second > 0.5 ? 1 : 0);
    if (correct >= 0) acc.push_back(correct);
    lens.push_back(double(c.ids.size()));
    gen_tokens += static_cast<int64_t>(c.ids.size());
    truncated += c.finish_reason == "length";
    runlog::RolloutRow row;
    row.step = step;
    row.prompt_id = data[picked[c.prompt_index]].id;
    row.group_index = c.prompt_index;
    row.sample_index = c.sample_index;
    row.prompt = prompt_text[c.prompt_index];
    row.completion = texts[i];
    row.n_tokens = static_cast<int64_t>(c.ids.size());
    row.finish_reason = c.finish_reason;
    row.reward = reward[i];
    row.advantage = adv[i];
    row.correct = correct;
    for (const auto& [label, v] : scored[i].rewards) {
      row.rewards.emplace_back(label, v, scored[i].details.value(label, Json::object()));
    }
    rows.push_back(std::move(row));
  }
  double r_mean = mean_of(finite_r), r_var = 0;
  for (double r : finite_r) r_var += (r - r_mean) * (r - r_mean);
  const double u = updates > 0 ? double(updates) : 1.0;
  m["reward_mean"] = r_mean;
  m["reward_std"] = finite_r.size() > 1 ? std::sqrt(r_var / double(finite_r.size() - 1)) : 0.0;
  for (const auto& [label, v] : per_reward) m["reward/" + label] = mean_of(v);
  m["accuracy"] = mean_of(acc);
  double adv_abs = 0;
  for (double a : adv) adv_abs += std::abs(a);
  m["advantage_abs_mean"] = adv.empty() ? 0.0 : adv_abs / double(adv.size());
  m["loss"] = agg_loss.loss / u;
  m["pg_loss"] = agg_loss.pg_loss / u;
  m["kl"] = agg_loss.kl / u;
  m["clip_low_frac"] = agg_loss.clip_low_frac / u;
  m["clip_high_frac"] = agg_loss.clip_high_frac / u;
  m["dual_clip_frac"] = agg_loss.dual_clip_frac / u;
  m["ratio_mean"] = agg_loss.ratio_mean / u;
  m["ratio_max"] = agg_loss.ratio_max;
  m["masked_seqs"] = agg_loss.masked_seqs;
  m["entropy"] = entropy_n > 0 ? entropy_sum / double(entropy_n) : 0.0;
  m["completion_len_mean"] = mean_of(lens);
  m["completion_len_max"] = lens.empty() ? 0.0 : *std::max_element(lens.begin(), lens.end());
  m["truncation_rate"] = comps.empty() ? 0.0 : double(truncated) / double(comps.size());
  m["tokens_per_s"] = double(gen_tokens) / std::max(1e-9, secs(t0, t1));
  m["time_rollout"] = secs(t0, t1);
  m["time_reward"] = secs(t1, t2);
  m["time_ref"] = secs(t2, t3);
  m["time_train"] = secs(t3, t4);
  m["lr"] = lr;
  m["grad_norm"] = grad_norm_sum / u;
  m["updates"] = updates;
  m["skipped_updates"] = skipped;
  m["groups_dropped"] = dropped_groups;
  m["sequences"] = static_cast<int64_t>(seqs.size());
  if (temp == 1.0 && cfg.sampling.repetition_penalty == 1.0) {
    m["logprob_mismatch"] = mismatch_n > 0 ? mismatch / double(mismatch_n) : 0.0;
  }
  if (!loads.empty()) m["expert_load"] = loads;
  db->write_step(step, m, rows);
  return m;
}

}  // namespace aha::grpo
