// Prompt datasets, prompt rendering, dedup hashes and accuracy measurement for distillation.
#include "aha/distill/common.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "aha/core/error.h"
#include "aha/train/sample_score.h"

namespace aha::distill {

std::vector<std::string> prompt_data_keys() {
  return {"train", "format", "limit", "digits", "synthetic_size", "split", "template",
          "eval_fraction", "numbers", "max_number", "system_prompt", "chat_template_kwargs"};
}

std::string sample_hash(const std::string& prompt, const std::string& completion) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](unsigned char c) {
    h ^= c;
    h *= 1099511628211ULL;
  };
  for (unsigned char c : prompt) mix(c);
  mix(0);
  for (unsigned char c : completion) mix(c);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

AccuracyResult accuracy(const policy::Model<float>& model, const tokenizer::Tokenizer& tok,
                        const std::vector<datasets::Example>& examples,
                        const datasets::PromptTemplate& templ, const rewards::RewardSet& rewards,
                        const std::string& label, const rollout::SamplingParams& sampling,
                        uint64_t seed) {
  std::vector<train::Prompt> prompts;
  for (const auto& ex : examples) prompts.push_back({&ex.row, ex.id});
  train::SampleOptions so;
  so.sampling = sampling;
  so.engine.seed = seed;
  AccuracyResult r;
  for (const Rollout& c : train::sample_and_score(model, tok, templ,
                                                  prompts, so, rewards, label)) {
    ++r.n;
    r.correct += c.correct == 1;
  }
  return r;
}

}  // namespace aha::distill
