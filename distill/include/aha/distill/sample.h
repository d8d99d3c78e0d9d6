// `aha distill sample`: rejection sampling from a teacher. The teacher generates K completions per
// prompt; the reward checkers keep the correct ones and readability filters drop overlong,
// mixed-language and tag-unbalanced ones (counted per filter); survivors are appended to an SFT
// JSONL (docs/distill.md) deduplicated by prompt + completion. Prompts are processed in chunks
// and recorded in <output>.done after their rows are written, so an interrupted run resumes
// where it stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "aha/core/config.h"
#include "aha/rollout/sampling.h"

namespace aha::distill {

struct FilterConfig {
  int max_completion_tokens = 0;  // 0: sampling.max_new_tokens; completions cut at the limit drop
  std::string language = "en";    // script of the chain of thought ("" : no language filter)
  double min_language_share = 0.95;
  bool balanced_tags = true;  // <think>/<answer> opened and closed in order, once each
  static FilterConfig from_json(const Json& j);  // strict
};

struct SampleConfig {
  std::string teacher;
  std::string output;  // SFT JSONL (appended)
  uint64_t seed = 0;
  Json data;                    // as `aha train`'s data
  Json rewards;                 // default: math + format
  std::string accuracy_reward;  // label that decides correctness (default: the first)
  int samples_per_prompt = 4;
  int store_topk = 0;  // > 0: teacher top-k logprobs per completion token
  int prompts_per_chunk = 16;
  int max_batch = 64;
  int threads = 0;
  rollout::SamplingParams sampling;
  FilterConfig filters;
  static SampleConfig from_json(const Json& j);  // strict
};

// Why a completion was dropped: the first failing check, in this order.
enum class Verdict {
  kKept,
  kError,
  kWrong,
  kOverlong,
  kMixedLanguage,
  kUnbalancedTags,
  kDuplicate
};
const char* verdict_name(Verdict v);

// The readability filters on one completion (text, its token count, its finish reason).
Verdict readability(const FilterConfig& f, int max_new_tokens, const std::string& completion,
                    int64_t n_tokens, const std::string& finish_reason);
// <think>/<answer> tags: every opening tag closed after it, no tag twice, no stray closing tag.
bool tags_balanced(const std::string& text);

struct SampleStats {
  int64_t prompts = 0, generated = 0;
  std::map<std::string, int64_t> counts;  // verdict name -> completions
  Json to_json() const;
  static SampleStats from_json(const Json& j);
};

// Runs (or resumes) sampling. on_chunk is called after each chunk with the running totals.
SampleStats run_sample(
    const SampleConfig& cfg,
    const std::function<void(const SampleStats&, int64_t total_prompts)>& on_chunk = {});

}  // namespace aha::distill
