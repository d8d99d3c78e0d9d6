// One GRPO step: rollouts (sampled, or from a rollout file) -> learn -> reference update -> log.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "aha/core/dist.h"
#include "aha/policy/checkpoint.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

// The share of groups whose rewards are all equal: they have zero advantage, so nothing to
// learn from (TRL's frac_reward_zero_std).
double frac_flat_groups(const std::vector<Rollout>& rows) {
  std::map<std::pair<std::string, int64_t>, std::pair<double, double>> range;  // min, max
  for (const Rollout& r : rows) {
    auto [it, fresh] = range.try_emplace({r.prompt_id, r.group}, r.reward, r.reward);
    if (!fresh) {
      it->second.first = std::min(it->second.first, r.reward);
      it->second.second = std::max(it->second.second, r.reward);
    }
  }
  if (range.empty()) return 0.0;
  int64_t flat = 0;
  for (const auto& [key, mm] : range) flat += !(mm.second - mm.first > 1e-9);
  return double(flat) / double(range.size());
}

// All ranks' rollouts on rank 0, in rank order (empty elsewhere), as rollout-file lines.
std::vector<Rollout> gather_rollouts(const std::vector<Rollout>& mine, RolloutLimits lim) {
  if (!dist::active()) return mine;
  Json arr = Json::array();
  for (const Rollout& r : mine) arr.push_back(rollout_to_json(r));
  auto parts = dist::gather_to_root(arr.dump(-1, ' ', false, Json::error_handler_t::replace),
                                    "rollouts");
  lim.logged_rows = true;
  std::vector<Rollout> all;
  for (size_t rank = 0; rank < parts.size(); ++rank) {
    const Json lines = Json::parse(parts[rank]);
    for (size_t i = 0; i < lines.size(); ++i) {
      all.push_back(rollout_from_json(lines[i], "rank " + std::to_string(rank), int64_t(i), lim));
    }
  }
  return all;
}

// The policy as plain weights in the reference's layout: its parameters, or with LoRA the
// merged W + s B A (into `merged`), since the reference has no adapters.
const std::vector<float>& plain_weights(const policy::Model<float>& m, std::vector<float>& merged) {
  if (m.adapter_begin() == m.params().size()) return m.params();
  merged.assign(m.params().begin(), m.params().begin() + m.adapter_begin());
  std::vector<float> w;
  for (const policy::ParamEntry& e : m.table().entries()) {
    if (policy::merged_weight(m, e, w)) std::copy(w.begin(), w.end(), merged.begin() + e.offset);
  }
  return merged;
}

}  // namespace

Json Trainer::State::run_step() {
  const GrpoConfig& g = cfg.grpo;
  Json m = Json::object();
  const dist::Traffic sent0 = dist::traffic();
  std::vector<Rollout> rs = step_rollouts(m);
  learn(rs, m);
  if (dist::active()) {  // rank 0's bytes to other ranks this step (docs/scaling.md)
    const dist::Traffic sent = dist::traffic();
    m["alltoall_bytes"] = sent.alltoall_bytes - sent0.alltoall_bytes;
    m["allreduce_bytes"] = sent.allreduce_bytes - sent0.allreduce_bytes;
  }
  ++step;
  if (ref && g.ref_reset_every > 0 && step % g.ref_reset_every == 0) {
    std::vector<float> merged;
    ref->params() = plain_weights(*policy, merged);
    ref_changed = true;
  } else if (ref && g.ref_ema > 0) {
    auto& rp = ref->params();
    std::vector<float> merged;
    const std::vector<float>& pp = plain_weights(*policy, merged);
    for (size_t i = 0; i < rp.size(); ++i) rp[i] = static_cast<float>((1 - g.ref_ema) * rp[i] + g.ref_ema * pp[i]);
    ref_changed = true;
  }

  // Every rank evaluates (the same deterministic work), so no rank waits in a collective.
  if (g.eval_every > 0 && !eval_data.empty() && (step % g.eval_every == 0 || step == g.steps)) {
    run_eval(m);
  }
  const std::vector<Rollout> rows =
      gather_rollouts(rs, rollout_limits(policy->config(), policy->rope().max_pos()));
  if (dist::active() && g.checksum_every > 0 && (step % g.checksum_every == 0 || step == g.steps)) {
    check_ranks_agree();
  }
  if (dist::rank() != 0) return m;
  std::vector<double> finite_r, acc, lens, adv_abs;
  std::map<std::string, std::vector<double>> per_reward;
  int64_t truncated = 0, episodes = 0, calls = 0, tool_errors = 0, call_errors = 0;
  for (const Rollout& r : rows) {
    if (!r.turns.empty()) ++episodes;
    for (const Turn& t : r.turns) {
      if (t.role != "tool") continue;
      ++calls;
      call_errors += t.status != "ok";
    }
    tool_errors += r.finish_reason == "tool_error";
    if (std::isfinite(r.reward)) finite_r.push_back(r.reward);
    for (const auto& [label, v, d] : r.reward_parts) per_reward[label].push_back(v);
    if (r.correct >= 0) acc.push_back(r.correct);
    lens.push_back(double(r.n()));
    adv_abs.push_back(std::abs(r.logged_advantage));
    truncated += r.finish_reason == "length";
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
  m["truncation_rate"] = rows.empty() ? 0.0 : double(truncated) / double(rows.size());
  m["frac_reward_zero_std"] = frac_flat_groups(rows);
  if (episodes > 0) {  // multi-turn episodes (docs/agentic.md)
    m["tool_calls_mean"] = double(calls) / double(rows.size());
    m["tool_call_ok_frac"] = calls > 0 ? 1.0 - double(call_errors) / double(calls) : 0.0;
    m["tool_error_rate"] = double(tool_errors) / double(rows.size());
  }
  db->write_step(step, m, rows, g.log_tokens);
  warn_if_nothing_to_learn(m["frac_reward_zero_std"].get<double>());
  return m;
}

void Trainer::State::warn_if_nothing_to_learn(double frac_flat) {
  // Several steps in a row: one flat step is normal early on, a streak means no signal at all
  // (every reward 0: a prompt template the base never saw, a broken reward, too hard a task).
  constexpr int kSteps = 5;
  flat_streak = frac_flat >= 1.0 ? flat_streak + 1 : 0;
  if (flat_streak != kSteps) return;
  log_event(step, "warn", "no_signal",
            "every group had equal rewards for " + std::to_string(kSteps) +
                " steps: advantages are 0 and nothing is learned (check data.template against "
                "the base model's prompts, the rewards, and the task's difficulty)");
  spdlog::warn("every group had equal rewards for {} steps: nothing is being learned", kSteps);
}

void Trainer::State::check_ranks_agree() {
  // FNV-1a over the weights' bytes (and the reference's, which EMA moves): every rank must
  // hold the same bits after the same updates. parallel.ep: the replicated values only, each
  // rank's experts being its own.
  auto fnv = [](const policy::Model<float>& m, uint64_t h) {
    const auto* b = reinterpret_cast<const unsigned char*>(m.params().data());
    train::ExpertShards(m).outside(0, m.params().size(), [&](size_t lo, size_t hi) {
      for (size_t i = lo * sizeof(float); i < hi * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ULL;
    });
    return h;
  };
  uint64_t h = fnv(*policy, 1469598103934665603ULL);
  if (ref) h = fnv(*ref, h);
  const std::vector<double> all = dist::allgather({double(h >> 32), double(h & 0xffffffffULL)}, "weight checksum");
  for (size_t r = 2; r < all.size(); r += 2) {
    if (all[r] != all[0] || all[r + 1] != all[1]) {
      fail("ranks diverged: the weights of rank ", r / 2, " differ from rank 0's after step ", step);
    }
  }
}

}  // namespace aha::grpo
