// Advantage estimators.
#include "aha/grpo/advantages.h"

#include <cmath>
#include <map>

#include "aha/core/error.h"

namespace aha::grpo {

AdvantageMode AdvantageConfig::parse_mode(const std::string& s) {
  if (s == "grpo") return AdvantageMode::kGrpo;
  if (s == "rloo") return AdvantageMode::kRloo;
  if (s == "reinforce_pp" || s == "reinforce++") return AdvantageMode::kReinforcePP;
  if (s == "process") return AdvantageMode::kProcess;
  fail("grpo.advantage must be grpo, rloo, reinforce_pp or process (got '", s, "')");
}

RewardScale AdvantageConfig::parse_scale(const std::string& s) {
  if (s == "group") return RewardScale::kGroup;
  if (s == "batch") return RewardScale::kBatch;
  if (s == "none") return RewardScale::kNone;
  fail("grpo.scale_rewards must be group, batch or none (got '", s, "')");
}

namespace {

struct Stats {
  double mean = 0, std = 0;
  int64_t n = 0;
};

Stats stats_of(const std::vector<double>& v, const std::vector<size_t>& idx) {
  Stats s;
  for (size_t i : idx) {
    if (!std::isfinite(v[i])) continue;
    s.mean += v[i];
    ++s.n;
  }
  if (s.n == 0) return s;
  s.mean /= double(s.n);
  double ss = 0;
  for (size_t i : idx) {
    if (std::isfinite(v[i])) ss += (v[i] - s.mean) * (v[i] - s.mean);
  }
  s.std = s.n > 1 ? std::sqrt(ss / double(s.n - 1)) : 0.0;
  return s;
}

}  // namespace

std::vector<double> compute_advantages(const std::vector<double>& rewards,
                                       const std::vector<int64_t>& group_of,
                                       const AdvantageConfig& cfg) {
  AHA_CHECK(rewards.size() == group_of.size(), rewards.size(), " vs ", group_of.size());
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < rewards.size(); ++i) groups[group_of[i]].push_back(i);
  std::vector<size_t> all(rewards.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const Stats batch = stats_of(rewards, all);
  std::vector<double> adv(rewards.size(), 0.0);
  for (const auto& [g, idx] : groups) {
    Stats s = stats_of(rewards, idx);
    if (s.n < 2) continue;  // no baseline to compare with: no signal
    for (size_t i : idx) {
      if (!std::isfinite(rewards[i])) continue;
      double centered = rewards[i] - s.mean;
      switch (cfg.mode) {
        case AdvantageMode::kGrpo:
          adv[i] = cfg.scale == RewardScale::kGroup   ? centered / (s.std + cfg.eps)
                   : cfg.scale == RewardScale::kBatch ? centered / (batch.std + cfg.eps)
                                                      : centered;
          break;
        case AdvantageMode::kRloo:
          // r_i minus the mean of the other n - 1 rewards.
          adv[i] = centered * double(s.n) / double(s.n - 1);
          break;
        case AdvantageMode::kReinforcePP:
          adv[i] = centered;
          break;
        case AdvantageMode::kProcess:
          fail("process supervision's advantages come from process_advantages");
      }
    }
  }
  if (cfg.mode == AdvantageMode::kReinforcePP) {
    // Whiten the group-centred rewards over the whole batch.
    std::vector<size_t> finite;
    for (size_t i = 0; i < rewards.size(); ++i) {
      if (std::isfinite(rewards[i])) finite.push_back(i);
    }
    Stats s = stats_of(adv, finite);
    for (size_t i : finite) adv[i] = (adv[i] - s.mean) / (s.std + cfg.eps);
  }
  return adv;
}

std::vector<std::vector<double>> process_advantages(
    const std::vector<std::vector<double>>& step_rewards,
    const std::vector<std::vector<int64_t>>& step_ends, const std::vector<int64_t>& n_tokens,
    const std::vector<int64_t>& group_of, double eps) {
  const size_t n = step_rewards.size();
  AHA_CHECK(step_ends.size() == n && n_tokens.size() == n && group_of.size() == n, "sizes");
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < n; ++i) groups[group_of[i]].push_back(i);
  std::vector<std::vector<double>> adv(n);
  for (const auto& [g, idx] : groups) {
    std::vector<double> flat;
    for (size_t i : idx) flat.insert(flat.end(), step_rewards[i].begin(), step_rewards[i].end());
    std::vector<size_t> all(flat.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = k;
    Stats s = stats_of(flat, all);
    for (size_t i : idx) {
      AHA_CHECK(step_ends[i].size() == step_rewards[i].size(), "one end per step reward");
      adv[i].assign(n_tokens[i], 0.0);
      // Suffix sums: token t collects every step ending after it.
      for (size_t j = 0; j < step_rewards[i].size(); ++j) {
        double r = s.n > 1 && std::isfinite(step_rewards[i][j])
                       ? (step_rewards[i][j] - s.mean) / (s.std + eps)
                       : 0.0;
        int64_t end = std::min<int64_t>(step_ends[i][j], n_tokens[i]);
        for (int64_t t = 0; t < end; ++t) adv[i][t] += r;
      }
    }
  }
  return adv;
}

}  // namespace aha::grpo
