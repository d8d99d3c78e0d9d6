// Prompt datasets, prompt rendering, dedup hashes and accuracy measurement for distillation.
#include "aha/distill/common.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "aha/core/error.h"
#include "aha/rollout/engine.h"

namespace aha::distill {

std::vector<std::string> prompt_data_keys() {
  return {"train", "format", "limit", "digits", "synthetic_size", "split", "template",
          "eval_fraction", "numbers", "max_number"};
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
  std::vector<std::string> prompts;
  std::vector<rollout::Request> reqs;
  for (const auto& ex : examples) {
    prompts.push_back(templ.render_row(ex.row));
    rollout::Request r;
    r.prompt = tok.encode(prompts.back(), true);
    r.params = sampling;
    r.params.stop_at_eos(tok.eos_id());
    reqs.push_back(std::move(r));
  }
  rollout::EngineOptions eo;
  eo.seed = seed;
  eo.detokenize = [&tok](const std::vector<int32_t>& ids) {
    return tok.decode(tokenizer::known_ids(tok, ids));
  };
  auto comps = rollout::Engine(model, eo).generate(reqs);
  std::vector<std::string> texts(comps.size());
  std::vector<rewards::Sample> samples(comps.size());
  for (size_t i = 0; i < comps.size(); ++i) {
    texts[i] = tok.decode_utf8(tokenizer::known_ids(tok, comps[i].completion_ids), true);
    const int64_t p = comps[i].group;
    samples[i] = {prompts[p], texts[i], &examples[p].row,
                  static_cast<int64_t>(comps[i].completion_ids.size())};
  }
  auto scored = rewards.score_batch(samples);
  AccuracyResult r;
  for (const auto& s : scored) {
    ++r.n;
    auto it = s.rewards.find(label);
    if (it != s.rewards.end() && it->second > 0.5) ++r.correct;
  }
  return r;
}

}  // namespace aha::distill
