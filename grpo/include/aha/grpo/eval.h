// Evaluation: K samples per problem, scored by rewards; pass@1 (mean over samples) and pass@K.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/rollout.h"
#include "aha/datasets/dataset.h"
#include "aha/policy/model.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/rewards/reward.h"
#include "aha/rollout/engine.h"
#include "aha/rollout/sampling.h"
#include "aha/runlog/run_db.h"

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
  // Score with this set instead of building one from `rewards` (the trainer's own rewards,
  // plugins and custom registries included). Not owned.
  const rewards::RewardSet* reward_set = nullptr;
  // Tool-using episodes (rollout.*; tokenize is filled here). No tools: single-turn.
  rollout::EpisodeOptions episodes;
};

// Returns {"pass@1", "pass@K", "k", "problems", "truncated" (share of completions cut at
// max_new_tokens), "completion_len_mean", "rewards": {label: mean}}; with tools also
// "tool_calls_mean" (calls per episode) and "tool_errors" (share of episodes a tool ended).
Json evaluate(const EvalOptions& options);

// Warns (and returns true) when model_dir's aha_data.json records a prompt template that
// `templ` (a config name or text) is not: a base only answers prompts shaped like its documents.
bool warn_on_template_change(const std::string& model_dir, const std::string& templ);

// The same on a model already in memory (evaluation during training): options.model and .data
// only locate the chat template and its options (data.template "chat"), .db_path is not used;
// rows (when given) receives one record per completion.
Json evaluate_model(const policy::Model<float>& model, const tokenizer::Tokenizer& tok,
                    const std::vector<datasets::Example>& problems, const EvalOptions& options,
                    std::vector<Rollout>* rows = nullptr);

}  // namespace aha::grpo
