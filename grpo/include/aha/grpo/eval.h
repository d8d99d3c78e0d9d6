// Evaluation: K samples per problem, scored by rewards; pass@1 (mean over samples) and pass@K.
#pragma once

#include <functional>

#include <string>

#include "aha/core/config.h"
#include "aha/rollout/engine.h"
#include "aha/rollout/sampling.h"

namespace aha::grpo {

struct EvalOptions {
  std::string model;
  Json data;                 // as in a run config; "eval" (or "train") names the problems
  std::string templ = "r1_zero";
  Json rewards;              // reward spec; the accuracy reward decides pass/fail
  std::string accuracy_reward;
  int n = 1;                 // samples per problem (K)
  rollout::SamplingParams sampling;
  uint64_t seed = 0;
  int max_batch = 64;
  std::string out_jsonl;     // per-problem results ("" : none)
  std::string db_path;       // run.db to log into ("" : none)
  std::function<void(const rollout::Progress&)> on_progress;  // sampling progress (may be empty)
  double warn_truncated = 0.05;  // warn when more completions than this hit max_new_tokens
};

// Returns {"pass@1", "pass@K", "k", "problems", "truncated" (share of completions cut at
// max_new_tokens), "completion_len_mean", "rewards": {label: mean}}.
Json evaluate(const EvalOptions& options);

}  // namespace aha::grpo
