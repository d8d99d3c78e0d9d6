// Pieces shared by `aha distill sample` and `aha distill train`: loading prompt datasets from the
// same sources as `aha train`, rendering prompts, and measuring a model's accuracy on a task.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/datasets/dataset.h"
#include "aha/datasets/prompt_template.h"
#include "aha/policy/model.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/rewards/reward.h"
#include "aha/rollout/sampling.h"

namespace aha::distill {

// The data keys of `aha train` but eval (docs/config.md): train, format, limit, digits,
// synthetic_size, split, template.
std::vector<std::string> prompt_data_keys();
// 64-bit FNV-1a of prompt + '\0' + completion as 16 hex digits: the dedup key of SFT rows.
std::string sample_hash(const std::string& prompt, const std::string& completion);

struct AccuracyResult {
  int64_t n = 0, correct = 0;
  double accuracy() const { return n > 0 ? double(correct) / double(n) : 0.0; }
};

// One completion per example (seeded sampling, or greedy with temperature 0), scored with the
// reward `label` of `rewards`: > 0.5 counts as correct.
AccuracyResult accuracy(const policy::Model<float>& model, const tokenizer::Tokenizer& tok,
                        const std::vector<datasets::Example>& examples,
                        const datasets::PromptTemplate& templ, const rewards::RewardSet& rewards,
                        const std::string& label, const rollout::SamplingParams& sampling,
                        uint64_t seed);

}  // namespace aha::distill
