// The state of one Engine::generate() call, shared by its parts: engine.cpp (admission,
// stepping, sampling), engine_episodes.cpp (tool-using episodes) and engine_speculative.cpp
// (steps drafted by the MTP module).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aha/core/rng.h"
#include "aha/rollout/engine.h"
#include "tool_runner.h"

namespace aha::rollout::detail {

struct Live {
  Rollout out;
  SeqCache cache;
  Rng rng;
  std::vector<int32_t> history;  // prompt + completion, for the repetition penalty
  const SamplingParams* params = nullptr;
  int32_t next = -1;  // token to feed at the next decode step
  int64_t reserved_bytes = 0;
  bool done = false;
  // Episodes: observation tokens still to feed after `next` (their logits are not sampled
  // from), the start of the current assistant turn, the tool calls made, the call waiting for
  // its tool (set while sampling), whether a tool is running, and one session per tool.
  std::deque<int32_t> feed;
  int64_t turn_begin = 0;
  int calls = 0;
  std::optional<ToolCall> call;
  std::string call_tail;  // ToolCall::tail of the call being answered
  bool waiting = false;
  std::map<std::string, std::unique_ptr<ToolSession>> sessions;
  // Environments: the prompt's logits (the first token is sampled from them when the reset
  // observation is empty), and whether the reset is still running.
  std::vector<float> first_logits;
  bool resetting = false;
};

constexpr float kNoLogprob = std::numeric_limits<float>::quiet_NaN();

using ToolRunner = BasicToolRunner<Live>;

// Row `row` of a decode step's routing of `rows` sequences (each layer its own width: experts
// per token, or a sparse attention's selection).
void append_routing(Routing& dst, const Routing& src, int64_t row, int64_t rows);

// The state of one generate() call: the queue of prompts not yet admitted, the live sequences
// and the finished completions.
class GenerateRun {
 public:
  GenerateRun(const Decoder& decoder, const EngineOptions& opts,
              const std::vector<Request>& requests);

  bool busy() const { return !live_.empty() || !pending_.empty(); }

  // Prefills pending prompts while the batch and the cache budget have room (always at least
  // one when nothing is live, so a prompt larger than the budget still runs alone).
  void admit();

  // One decode step of every live sequence, then each samples its next token.
  // Sequences waiting for a tool sit out; a sequence feeding an observation takes its next
  // token from the feed instead of sampling. When every live sequence waits for a tool, waits
  // for one of them to answer.
  void step();

  // Speculative decoding: the MTP module runs each sequence's pending rows, the last of which
  // drafts the token after `next`; one decode step feeds `next` and the draft; speculative
  // sampling keeps the draft (then the step's second row gives one more token) or replaces it
  // and drops its cache row.
  void step_speculative();

  // Moves finished sequences to the results and frees their budget.
  void retire(const std::function<void(const Progress&)>& on_progress);

  // Ends every live and pending sequence as "cancelled".
  void cancel(const std::function<void(const Progress&)>& on_progress);

  std::vector<Rollout> take_results();

 private:
  Rollout placeholder(size_t pi, int s, const char* reason) const;

  static void finish(Live& s, const char* reason);

  // Prefills the admitted prompts together, once each, and starts their groups.
  void start_groups(const std::vector<std::pair<size_t, int64_t>>& starts);
  // The positions a request's sequence may reach: its cache's reserved length.
  int64_t sequence_tokens(const Request& r) const {
    return std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) + r.params.max_new_tokens,
                             max_pos_);
  }
  // Starts the n sequences of prompt pi from copies of its prefilled cache.
  void start_group(size_t pi, int64_t want, const SeqCache& prompt_cache,
                   const std::vector<float>& prompt_logits, const Routing& prompt_routing);

  // Samples the next token of `s` from its logits row and decides whether it is done.
  void advance(Live& s, const float* row, std::vector<float>& buf) const;

  // Appends a chosen token to `s` and decides whether it is done; `fed` is the number of
  // positions in the cache before the token (a speculative step may have fed more).
  void take(Live& s, const TokenSample& ts, std::vector<int32_t> kept, int64_t fed) const;

  std::string turn_text(const Live& s) const;

  bool is_stop(const Live& s, int32_t token) const;

  void push_assistant_turn(Live& s);

  // An environment's episode starts with its reset observation: the sequence waits for it, then
  // feeds it and samples its first token after it (or from the prompt when it is empty).
  void start_episode(Live& s, const std::vector<float>& prompt_logits);

  // Sends s's call to its tool; a call that cannot be parsed or names no known tool gets its
  // error as the observation without a tool run.
  void dispatch(Live& s);

  void dispatch_calls();

  void collect(bool block);

  // A tool's answer: the observation's tokens join the completion (loss mask 0, no logprob)
  // and are queued for the cache; a fatal answer or an overlong output ends the episode.
  void observe(Live& s, ToolResult r, double seconds);

  // The reset observation goes in as written (no call to answer, so no prefix or suffix).
  void reset_observed(Live& s, const std::string& text);

  void append_observation(Live& s, const std::vector<int32_t>& ids);

  // The last assistant turn of a finished episode.
  void close_turns(Live& s) { push_assistant_turn(s); }

  const Decoder& decoder_;
  const EngineOptions& opts_;
  const std::vector<Request>& requests_;
  const policy::ModelConfig& c_;
  const int max_pos_;
  std::deque<size_t> pending_;
  std::vector<std::unique_ptr<Live>> live_;
  std::vector<Rollout> results_;
  Progress progress_;
  int64_t budget_used_ = 0;
  std::vector<float> logits_, draft_logits_, scratch_;
  std::map<std::string, const Tool*> tools_;
  const Tool* env_ = nullptr;           // the environment among the tools, if any
  std::unique_ptr<ToolRunner> runner_;  // episodes only; declared last: joined first
};

}  // namespace aha::rollout::detail
