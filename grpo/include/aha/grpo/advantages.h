// Group-relative advantages: GRPO (DeepSeekMath outcome supervision) with group, batch or no
// std scaling (Dr. GRPO), RLOO, REINFORCE++-baseline, and DeepSeekMath process supervision.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace aha::grpo {

// kProcess: process supervision, per-step rewards turned into token advantages
// (process_advantages), not compute_advantages.
enum class AdvantageMode { kGrpo, kRloo, kReinforcePP, kProcess };
enum class RewardScale { kGroup, kBatch, kNone };

struct AdvantageConfig {
  AdvantageMode mode = AdvantageMode::kGrpo;
  RewardScale scale = RewardScale::kGroup;
  double eps = 1e-4;
  static AdvantageMode parse_mode(const std::string& s);
  static RewardScale parse_scale(const std::string& s);
};

// rewards[i] belongs to group group_of[i]. Groups of one sample, and samples whose reward is
// NaN/Inf, get advantage 0 (and non-finite rewards are left out of the group statistics).
// Standard deviations are the unbiased (n - 1) ones, as in TRL.
std::vector<double> compute_advantages(const std::vector<double>& rewards,
                                       const std::vector<int64_t>& group_of,
                                       const AdvantageConfig& config);

// Process supervision (DeepSeekMath): completion i has step rewards step_rewards[i][j] ending
// at token step_ends[i][j] (exclusive, ascending). Rewards are normalised over all steps of the
// group; a token's advantage is the sum of the normalised rewards of the steps ending after it.
// Returns per-token advantages [i][t] for completions of n_tokens[i] tokens.
std::vector<std::vector<double>> process_advantages(
    const std::vector<std::vector<double>>& step_rewards,
    const std::vector<std::vector<int64_t>>& step_ends, const std::vector<int64_t>& n_tokens,
    const std::vector<int64_t>& group_of, double eps = 1e-4);

}  // namespace aha::grpo
