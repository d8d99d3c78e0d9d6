// Grouped rollouts with continuous batching. Each request is a prompt and a group size G: the
// prompt is prefilled once and its cache copied into G sequences; every step decodes all live
// sequences as one batch; a finished sequence frees its slot for the next one. Each sequence
// samples from its own RNG stream (seed, prompt index, sample index), and the decode kernels
// are batch invariant, so outputs depend on the seed only: not on the thread count, the batch
// size or which other sequences share a step.
//
// With tools (EngineOptions::episodes), a completion is an episode: when the text of the
// current assistant turn holds a complete call, that sequence leaves the batch while its tool
// runs on a tool thread (the others go on decoding); the observation's tokens are then fed to
// its cache through the decode path, one per step alongside the other sequences (the prefix is
// never prefilled again), and sampling resumes after the last one. Observation tokens carry
// loss_mask 0 and NaN logprobs; Rollout::turns records the turns. Batch invariance makes an
// episode independent of when its tool answered.
//
// Expert parallel (a model built with sharded experts, decoder.h): generate() is collective.
// Every rank calls it with its own requests (none included); each loop iteration makes one
// prefill and one decode pass on every rank, and the loop ends when no rank has work left. Not
// with speculative decoding, episodes or Engram.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "aha/core/rollout.h"
#include "aha/rollout/decoder.h"
#include "aha/rollout/episode.h"
#include "aha/rollout/sampling.h"

namespace aha::rollout {

struct Request {
  std::vector<int32_t> prompt;
  std::string text;  // the prompt's text (optional): Rollout::prompt_text, and what tools see
  int n = 1;  // completions for this prompt (the GRPO group)
  SamplingParams params;
  // The RNG stream of this prompt's samples (-1: its index in the request list). Data-parallel
  // ranks pass the prompt's global index so that a split batch samples what one rank would.
  int64_t stream = -1;
};

struct EngineOptions {
  int max_batch = 64;                     // live sequences per decode step
  int64_t cache_budget_bytes = int64_t{4} << 30;
  bool absorbed = true;                   // false: naive MLA decode (oracle, benchmark)
  uint64_t seed = 0;
  bool record_routing = false;
  bool record_kept_ids = false;
  // Turns ids into text for stop strings; without it stop strings are an error.
  std::function<std::string(const std::vector<int32_t>&)> detokenize;
  // Multi-turn, tool-using episodes (needs detokenize); disabled when it names no tool.
  EpisodeOptions episodes;
  // Test and replay hook (thread-safe, called from the sampling threads): a token it returns is
  // taken instead of a sample; its logprobs are still the model's (sampled_logprobs at
  // temperature 1, sampling_dist_logprobs at the request's temperature, untruncated).
  std::function<std::optional<int32_t>(const Rollout& so_far)> force_token;
  // Speculative decoding with the model's MTP module as the draft (num_nextn_predict_layers: 1):
  // each step feeds a sequence's next token and one drafted token, and keeps the draft by exact
  // speculative sampling, so completions and recorded logprobs are distributed as plain
  // sampling's (greedy: the same tokens). Not with tools, force_token or Engram.
  bool speculative = false;
};

struct Progress {
  int64_t done = 0, total = 0, tokens = 0;
  int64_t drafted = 0, accepted = 0;  // speculative decoding: drafts made and kept
};

class Engine {
 public:
  Engine(const policy::Model<float>& model, EngineOptions options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Decoder& decoder() const { return decoder_; }

  // One Rollout record per completion, ordered by (group, sample_index), where group is the
  // request's index: prompt_ids, completion_ids (stop token included), sampling_dist_logprobs
  // (under the sampling distribution: temperature, top-k/top-p/min-p), sampled_logprobs (under
  // the temperature-1 untruncated policy), finish_reason (stop | length | error | cancelled) and,
  // when recorded, routing ([moe layer][(prompt_len + n - 1) * K]) and kept_ids. A bad prompt
  // (empty, too long, ids out of the vocabulary) yields its n rollouts with finish_reason "error"
  // and the reason in `error`; others go on. `cancel` set to true stops early: unfinished
  // completions end "cancelled".
  std::vector<Rollout> generate(const std::vector<Request>& requests,
                                   const std::function<void(const Progress&)>& on_progress = {},
                                   const std::atomic<bool>* cancel = nullptr) const;

 private:
  Decoder decoder_;
  EngineOptions opts_;
};

}  // namespace aha::rollout
