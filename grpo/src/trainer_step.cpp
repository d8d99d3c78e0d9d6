// One GRPO step: rollouts (sampled, or from a rollout file) -> learn -> reference update -> log.
#include <cmath>
#include <map>

#include "trainer_state.h"

namespace aha::grpo {

namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

runlog::RolloutRow row_of(const Rollout& r, int64_t step, bool tokens) {
  runlog::RolloutRow row;
  row.step = step;
  row.prompt_id = r.prompt_id;
  row.group_index = r.group;
  row.sample_index = r.sample_index;
  row.prompt = r.prompt_text;
  row.completion = r.completion_text;
  row.n_tokens = r.n();
  row.finish_reason = r.finish_reason;
  row.reward = r.reward;
  row.advantage = r.logged_advantage;
  row.correct = r.correct;
  row.rewards = r.reward_parts;
  if (tokens && r.learn) {
    row.prompt_ids = r.prompt_ids;
    row.completion_ids = r.completion_ids;
    row.old_logprobs = r.old_logprobs;
    row.ref_logprobs = r.ref_logprobs;
    row.routing = r.routing;
  }
  return row;
}

}  // namespace

Json Trainer::State::run_step() {
  const GrpoConfig& g = cfg.grpo;
  Json m = Json::object();
  std::vector<Rollout> rs = file_rollouts.empty() ? sample_rollouts(m) : file_rollouts;
  learn(rs, m);
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

  std::vector<double> finite_r, acc, lens, adv_abs;
  std::map<std::string, std::vector<double>> per_reward;
  int64_t truncated = 0;
  std::vector<runlog::RolloutRow> rows;
  for (const Rollout& r : rs) {
    if (std::isfinite(r.reward)) finite_r.push_back(r.reward);
    for (const auto& [label, v, d] : r.reward_parts) per_reward[label].push_back(v);
    if (r.correct >= 0) acc.push_back(r.correct);
    lens.push_back(double(r.n()));
    adv_abs.push_back(std::abs(r.logged_advantage));
    truncated += r.finish_reason == "length";
    rows.push_back(row_of(r, step, g.log_tokens));
  }
  double r_mean = mean_of(finite_r), r_var = 0;
  for (double r : finite_r) r_var += (r - r_mean) * (r - r_mean);
  m["reward_mean"] = r_mean;
  m["reward_std"] = finite_r.size() > 1 ? std::sqrt(r_var / double(finite_r.size() - 1)) : 0.0;
  for (const auto& [label, v] : per_reward) m["reward/" + label] = mean_of(v);
  if (!acc.empty() || file_rollouts.empty()) m["accuracy"] = mean_of(acc);
  m["advantage_abs_mean"] = mean_of(adv_abs);
  m["completion_len_mean"] = mean_of(lens);
  m["completion_len_max"] = lens.empty() ? 0.0 : *std::max_element(lens.begin(), lens.end());
  m["truncation_rate"] = rs.empty() ? 0.0 : double(truncated) / double(rs.size());
  db->write_step(step, m, rows);
  return m;
}

}  // namespace aha::grpo
