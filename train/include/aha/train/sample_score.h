// The one sample-and-score pipeline of GRPO, evaluation and distillation: data rows rendered
// through the prompt template, completed by the rollout engine, decoded and judged by the
// reward set, each completion one `aha::Rollout`.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "aha/core/rollout.h"
#include "aha/datasets/prompt_template.h"
#include "aha/policy/model.h"
#include "aha/rewards/reward.h"
#include "aha/rollout/engine.h"
#include "aha/tokenizer/tokenizer.h"

namespace aha::train {

// One prompt to complete: the data row the template renders and the rewards read.
struct Prompt {
  const Json* row = nullptr;
  std::string id;
};

struct SampleOptions {
  int n = 1;                        // completions per prompt (the GRPO group)
  rollout::SamplingParams sampling; // stops at the tokenizer's EOS in any case
  // Seed, batch, recording, episodes; the pipeline sets the tokenizer callbacks.
  rollout::EngineOptions engine;
  // >= 0: prompt i samples from RNG stream first_stream + i (data-parallel ranks pass their
  // share's global offset, so that a split batch samples what one rank would).
  int64_t first_stream = -1;
  std::function<void(const rollout::Progress&)> on_progress;
};

// Completes every prompt opts.n times. Each rollout's group is its prompt's index; prompt_id,
// prompt_text, completion_text and the turns' texts are filled (valid UTF-8, for run.db).
std::vector<Rollout> sample(const policy::Model<float>& model, const tokenizer::Tokenizer& tok,
                            const datasets::PromptTemplate& templ,
                            const std::vector<Prompt>& prompts, SampleOptions opts);

// Judges rs (rows[i]: the data row of rs[i]) and fills reward, reward_parts and correct (by
// the reward labelled `accuracy`; -1 when absent). A rollout that ended in an engine error
// gets a NaN reward (it teaches nothing); one ended by a broken tool gets 0 and is not correct.
// With steps_tok, process supervision's step rewards are filled too.
void score(std::span<Rollout> rs, const std::vector<const Json*>& rows,
           const rewards::RewardSet& rewards, const std::string& accuracy,
           const tokenizer::Tokenizer* steps_tok = nullptr);

// sample, then score with each prompt's row.
std::vector<Rollout> sample_and_score(const policy::Model<float>& model,
                                      const tokenizer::Tokenizer& tok,
                                      const datasets::PromptTemplate& templ,
                                      const std::vector<Prompt>& prompts,
                                      const SampleOptions& opts,
                                      const rewards::RewardSet& rewards,
                                      const std::string& accuracy);

// Per-turn credit from an environment (process supervision's step rewards): each rewarded step
// ends at the policy's turn that earned it (the token before its tool turn), and r.reward (the
// reward functions' score) is the last step, at the episode's end. False, and r unchanged,
// when no turn carries a reward.
bool set_env_step_rewards(Rollout& r);

// The engine's tokenizer callbacks: detokenize (stop strings, tool calls) and, when episodes
// are on, tokenize (observations).
void use_tokenizer(rollout::EngineOptions& eo, const tokenizer::Tokenizer& tok);

// completion_text and the turns' texts from the tokens, as valid UTF-8 (the engine's turn texts
// are raw bytes: a sampled token may end inside a character). A turn without tokens (an
// environment's last words) keeps its logged text.
void decode_texts(Rollout& r, const tokenizer::Tokenizer& tok);

}  // namespace aha::train
