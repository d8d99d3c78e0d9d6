// The continuous-batching scheduler around the decoder.
#include "aha/rollout/engine.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "aha/core/error.h"
#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "tool_runner.h"

namespace aha::rollout {

namespace {

struct Live {
  Rollout out;
  SeqCache cache;
  Rng rng;
  std::vector<int32_t> history;  // prompt + completion, for the repetition penalty
  const SamplingParams* params = nullptr;
  int32_t next = -1;             // token to feed at the next decode step
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

// log softmax(row / temperature)[token] (temperature <= 0: 1).
float logprob_of(const float* row, int vocab, int32_t token, double temperature) {
  const double inv = temperature > 0 ? 1.0 / temperature : 1.0;
  double mx = -std::numeric_limits<double>::infinity();
  for (int v = 0; v < vocab; ++v) mx = std::max(mx, double(row[v]) * inv);
  double sum = 0;
  for (int v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) * inv - mx);
  return static_cast<float>(double(row[token]) * inv - mx - std::log(sum));
}

std::string check_prompt(const std::vector<int32_t>& prompt, const policy::ModelConfig& c,
                         int max_pos) {
  if (prompt.empty()) return "empty prompt";
  if (static_cast<int64_t>(prompt.size()) >= max_pos) {
    return "prompt of " + std::to_string(prompt.size()) + " tokens leaves no room in the context of " +
           std::to_string(max_pos);
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= c.vocab_size) {
      return "token id " + std::to_string(id) + " outside the vocabulary [0, " +
             std::to_string(c.vocab_size) + ")";
    }
  }
  return "";
}

// Row `row` of a decode step's routing of `rows` sequences (each layer its own width: experts
// per token, or a sparse attention's selection).
void append_routing(Routing& dst, const Routing& src, int64_t row, int64_t rows) {
  if (dst.empty()) dst.resize(src.size());
  for (size_t m = 0; m < src.size(); ++m) {
    const int64_t w = static_cast<int64_t>(src[m].size()) / rows;
    dst[m].insert(dst[m].end(), src[m].begin() + row * w, src[m].begin() + (row + 1) * w);
  }
}

// The state of one generate() call: the queue of prompts not yet admitted, the live sequences
// and the finished completions.
class GenerateRun {
 public:
  GenerateRun(const Decoder& decoder, const EngineOptions& opts,
              const std::vector<Request>& requests)
      : decoder_(decoder),
        opts_(opts),
        requests_(requests),
        c_(decoder.model().config()),
        max_pos_(decoder.model().rope().max_pos()) {
    for (const auto& r : requests) {
      if (r.n < 1) fail("each request needs n >= 1");
      r.params.validate();
      if (!r.params.stop_strings.empty() && !opts_.detokenize) {
        fail("stop strings need a tokenizer");
      }
      progress_.total += r.n;
    }
    const EpisodeOptions& ep = opts_.episodes;
    if (ep.enabled()) {
      if (!opts_.detokenize || !ep.tokenize) fail("tool-using episodes need a tokenizer");
      if (ep.max_turns < 0) fail("rollout.max_turns must be >= 0");
      for (const Tool* t : ep.tools) {
        tools_[t->name()] = t;
        if (!t->environment()) continue;
        if (env_ != nullptr) fail("rollout.tools: at most one environment (", env_->name(), ", ", t->name(), ")");
        env_ = t;
      }
      runner_ = std::make_unique<ToolRunner>(ep.tool_threads);
    }
    for (size_t i = 0; i < requests.size(); ++i) pending_.push_back(i);
  }

  bool busy() const { return !live_.empty() || !pending_.empty(); }

  // Prefills pending prompts while the batch and the cache budget have room (always at least
  // one when nothing is live, so a prompt larger than the budget still runs alone).
  void admit() {
    while (!pending_.empty()) {
      const size_t pi = pending_.front();
      const Request& r = requests_[pi];
      const int64_t want =
          std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) + r.params.max_new_tokens,
                            max_pos_) *
          decoder_.cache_bytes_per_token();
      const bool fits = static_cast<int64_t>(live_.size()) + r.n <= opts_.max_batch &&
                        budget_used_ + want * r.n <= opts_.cache_budget_bytes;
      if (!fits && !live_.empty()) return;
      pending_.pop_front();
      std::string err = check_prompt(r.prompt, c_, max_pos_);
      if (!err.empty()) {
        for (int s = 0; s < r.n; ++s) {
          Rollout bad = placeholder(pi, s, "error");
          bad.error = err;
          results_.push_back(std::move(bad));
          ++progress_.done;
        }
        continue;
      }
      start_group(pi, want);
    }
    if (runner_) dispatch_calls();
  }

  // One decode step of every live sequence, then each samples its next token.
  // Sequences waiting for a tool sit out; a sequence feeding an observation takes its next
  // token from the feed instead of sampling. When every live sequence waits for a tool, waits
  // for one of them to answer.
  void step() {
    std::vector<Live*> active;
    for (auto& s : live_) {
      if (!s->waiting && !s->done) active.push_back(s.get());
    }
    if (active.empty()) {
      if (runner_) collect(true);
      return;
    }
    std::vector<int32_t> tokens;
    std::vector<SeqCache*> caches;
    for (Live* s : active) {
      tokens.push_back(s->next);
      caches.push_back(&s->cache);
    }
    Routing step_routing;
    decoder_.decode(tokens, caches, logits_, opts_.record_routing ? &step_routing : nullptr);
    if (opts_.record_routing) {
      const int64_t rows = static_cast<int64_t>(active.size());
      for (int64_t b = 0; b < rows; ++b) {
        append_routing(active[b]->out.routing, step_routing, b, rows);
      }
    }
    tbb::parallel_for(size_t{0}, active.size(), [&](size_t b) {
      Live& s = *active[b];
      if (!s.feed.empty()) {
        s.next = s.feed.front();
        s.feed.pop_front();
        return;
      }
      thread_local std::vector<float> buf;
      advance(s, logits_.data() + b * c_.vocab_size, buf);
    });
    if (runner_) {
      dispatch_calls();
      collect(false);
    }
  }

  // Moves finished sequences to the results and frees their budget.
  void retire(const std::function<void(const Progress&)>& on_progress) {
    for (auto& s : live_) {
      if (!s->done) continue;
      if (runner_) close_turns(*s);
      budget_used_ -= s->reserved_bytes;
      progress_.tokens += s->out.n();
      ++progress_.done;
      results_.push_back(std::move(s->out));
    }
    live_.erase(std::remove_if(live_.begin(), live_.end(), [](const auto& s) { return s->done; }),
                live_.end());
    if (on_progress) on_progress(progress_);
  }

  // Ends every live and pending sequence as "cancelled".
  void cancel(const std::function<void(const Progress&)>& on_progress) {
    // Running tool calls hold their sequences: wait for them (each is time-limited).
    while (runner_ && runner_->running() > 0) runner_->take(true);
    for (auto& s : live_) finish(*s, "cancelled");
    retire(on_progress);
    for (size_t pi : pending_) {
      for (int s = 0; s < requests_[pi].n; ++s) results_.push_back(placeholder(pi, s, "cancelled"));
    }
    pending_.clear();
  }

  std::vector<Rollout> take_results() {
    std::sort(results_.begin(), results_.end(), [](const Rollout& a, const Rollout& b) {
      return a.group != b.group ? a.group < b.group : a.sample_index < b.sample_index;
    });
    return std::move(results_);
  }

 private:
  Rollout placeholder(size_t pi, int s, const char* reason) const {
    Rollout out;
    out.group = static_cast<int64_t>(pi);
    out.prompt_ids = requests_[pi].prompt;
    out.sample_index = s;
    out.finish_reason = reason;
    return out;
  }

  static void finish(Live& s, const char* reason) {
    s.out.finish_reason = reason;
    s.done = true;
  }

  // Prefills prompt pi once and starts its n sequences from copies of the cache.
  void start_group(size_t pi, int64_t want) {
    const Request& r = requests_[pi];
    SeqCache prompt_cache;
    std::vector<float> prompt_logits;
    Routing prompt_routing;
    decoder_.prefill(r.prompt, prompt_cache, prompt_logits,
                     opts_.record_routing ? &prompt_routing : nullptr);
    for (int s = 0; s < r.n; ++s) {
      auto seq = std::make_unique<Live>();
      seq->out.group = static_cast<int64_t>(pi);
      seq->out.sample_index = s;
      seq->out.prompt_ids = r.prompt;
      seq->out.prompt_text = r.text;
      seq->cache = prompt_cache;
      const uint64_t stream =
          r.stream >= 0 ? static_cast<uint64_t>(r.stream) : static_cast<uint64_t>(pi);
      seq->rng = Rng(opts_.seed, (stream << 24) + static_cast<uint64_t>(s));
      seq->history = r.prompt;
      seq->params = &r.params;
      seq->reserved_bytes = want;
      if (opts_.record_routing) seq->out.routing = prompt_routing;
      budget_used_ += want;
      if (env_ != nullptr) {
        start_episode(*seq, prompt_logits);
      } else {
        advance(*seq, prompt_logits.data(), scratch_);
      }
      live_.push_back(std::move(seq));
    }
  }

  // Samples the next token of `s` from its logits row and decides whether it is done.
  void advance(Live& s, const float* row, std::vector<float>& buf) const {
    const SamplingParams& p = *s.params;
    std::vector<int32_t> kept;
    std::optional<int32_t> forced;
    if (opts_.force_token) forced = opts_.force_token(s.out);
    TokenSample ts;
    if (forced) {
      AHA_CHECK(*forced >= 0 && *forced < c_.vocab_size, "forced token outside the vocabulary");
      ts.token = *forced;
      ts.policy_logprob = logprob_of(row, c_.vocab_size, ts.token, 1.0);
      ts.logprob = p.greedy() ? 0.0f : logprob_of(row, c_.vocab_size, ts.token, p.temperature);
    } else {
      ts = sample_token(row, c_.vocab_size, p, s.rng, s.history, buf,
                        opts_.record_kept_ids ? &kept : nullptr);
    }
    if (opts_.record_kept_ids) s.out.kept_ids.push_back(std::move(kept));
    s.out.completion_ids.push_back(ts.token);
    s.out.sampling_dist_logprobs.push_back(ts.logprob);
    s.out.sampled_logprobs.push_back(ts.policy_logprob);
    if (runner_) s.out.loss_mask.push_back(1);
    s.history.push_back(ts.token);
    s.next = ts.token;
    if (is_stop(s, ts.token)) {
      finish(s, "stop");
      return;
    }
    if (runner_) {
      const std::string text = turn_text(s);
      if (auto call = find_call(opts_.episodes.format, text)) {
        if (s.calls >= opts_.episodes.max_turns) {
          finish(s, "max_turns");
        } else {
          s.call = std::move(call);  // dispatched after the sampling loop
        }
        return;
      }
    }
    const int turn_cap = opts_.episodes.max_turn_tokens;
    if (s.out.n() >= p.max_new_tokens || s.cache.len + 1 >= max_pos_ ||
        (runner_ && turn_cap > 0 && s.out.n() - s.turn_begin >= turn_cap)) {
      finish(s, "length");
    }
  }

  std::string turn_text(const Live& s) const {
    return opts_.detokenize(std::vector<int32_t>(s.out.completion_ids.begin() + s.turn_begin,
                                                 s.out.completion_ids.end()));
  }

  bool is_stop(const Live& s, int32_t token) const {
    const SamplingParams& p = *s.params;
    if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) !=
        p.stop_token_ids.end()) {
      return true;
    }
    if (p.stop_token_ids.empty() && c_.eos_token_id && token == *c_.eos_token_id) return true;
    if (p.stop_strings.empty()) return false;
    // In an episode only the current turn counts: an observation may hold a stop string.
    const std::string text = turn_text(s);
    for (const auto& stop : p.stop_strings) {
      if (text.find(stop) != std::string::npos) return true;
    }
    return false;
  }

  void push_assistant_turn(Live& s) {
    if (s.out.n() <= s.turn_begin) return;
    Turn t;
    t.role = "assistant";
    t.begin = s.turn_begin;
    t.end = s.out.n();
    t.text = turn_text(s);
    s.out.turns.push_back(std::move(t));
    s.turn_begin = s.out.n();
  }

  // An environment's episode starts with its reset observation: the sequence waits for it, then
  // feeds it and samples its first token after it (or from the prompt when it is empty).
  void start_episode(Live& s, const std::vector<float>& prompt_logits) {
    s.first_logits = prompt_logits;
    s.resetting = true;
    s.waiting = true;
    s.out.turns.push_back({"tool", 0, 0, "", env_->name(), "", 0.0});
    ToolCall reset;
    reset.tool = env_->name();
    runner_->submit(&s, env_, std::move(reset), true);
  }

  // Sends s's call to its tool; a call that cannot be parsed or names no known tool gets its
  // error as the observation without a tool run.
  void dispatch(Live& s) {
    ToolCall call = std::move(*s.call);
    s.call.reset();
    s.call_tail = call.tail;
    push_assistant_turn(s);
    ++s.calls;
    s.waiting = true;
    s.out.turns.push_back({"tool", s.out.n(), s.out.n(), "", call.tool, "", 0.0});
    auto it = tools_.find(call.tool);
    if (!call.error.empty() || it == tools_.end()) {
      const std::string why = !call.error.empty() ? call.error : "unknown tool \"" + call.tool + "\"";
      observe(s, {ToolStatus::kError, "error: " + why}, 0.0);
      return;
    }
    runner_->submit(&s, it->second, std::move(call));
  }

  void dispatch_calls() {
    for (auto& s : live_) {
      if (s->call) dispatch(*s);
    }
  }

  void collect(bool block) {
    for (ToolRunner::Done& d : runner_->take(block)) {
      observe(*d.seq, std::move(d.result), d.seconds);
    }
  }

  // A tool's answer: the observation's tokens join the completion (loss mask 0, no logprob)
  // and are queued for the cache; a fatal answer or an overlong output ends the episode.
  void observe(Live& s, ToolResult r, double seconds) {
    const EpisodeOptions& ep = opts_.episodes;
    s.waiting = false;
    Turn& t = s.out.turns.back();  // pushed by dispatch
    const std::string& tool = t.tool;
    t.seconds = seconds;
    if (r.status != ToolStatus::kFatal && static_cast<int64_t>(r.output.size()) > ep.max_output_bytes) {
      r = {ToolStatus::kFatal, "tool output of " + std::to_string(r.output.size()) +
                                   " bytes exceeds rollout.max_output_bytes (" +
                                   std::to_string(ep.max_output_bytes) + ")"};
    }
    if (r.status == ToolStatus::kFatal) {
      t.status = "fatal: " + r.output;
      s.out.error = tool + ": " + r.output;
      finish(s, "tool_error");
      return;
    }
    t.status = tool_status_name(r.status);
    t.reward = r.reward;
    if (r.done) {  // the environment ended the episode: its last words are logged only
      t.text = r.output;
      finish(s, "stop");
      return;
    }
    if (s.resetting) {
      reset_observed(s, r.output);
      return;
    }
    std::string prefix = ep.format.obs_prefix;
    if (prefix.compare(0, s.call_tail.size(), s.call_tail) == 0) prefix.erase(0, s.call_tail.size());
    std::string text = prefix + r.output;
    if (!r.output.empty() && r.output.back() != '\n') text += '\n';
    text += ep.format.obs_suffix;
    const std::vector<int32_t> ids = ep.tokenize(text);
    // The observation and at least one more policy token must fit the episode's budget.
    const int64_t after = s.out.n() + static_cast<int64_t>(ids.size());
    if (after + 1 > s.params->max_new_tokens ||
        s.cache.len + 1 + static_cast<int64_t>(ids.size()) + 1 >= max_pos_) {
      finish(s, "length");
      return;
    }
    append_observation(s, ids);
    t.end = s.out.n();
    t.text = text;
    s.turn_begin = s.out.n();
  }

  // The reset observation goes in as written (no call to answer, so no prefix or suffix).
  void reset_observed(Live& s, const std::string& text) {
    s.resetting = false;
    Turn& t = s.out.turns.back();
    t.text = text;
    const std::vector<int32_t> ids = text.empty() ? std::vector<int32_t>{} : opts_.episodes.tokenize(text);
    if (static_cast<int64_t>(ids.size()) + 1 > s.params->max_new_tokens ||
        s.cache.len + static_cast<int64_t>(ids.size()) + 1 >= max_pos_) {
      finish(s, "length");
      return;
    }
    if (ids.empty()) {
      advance(s, s.first_logits.data(), scratch_);
    } else {
      append_observation(s, ids);
      s.next = s.feed.front();  // nothing sampled yet: the observation's first token goes next
      s.feed.pop_front();
    }
    t.end = s.out.n();
    s.turn_begin = s.out.n();
    std::vector<float>().swap(s.first_logits);
  }

  void append_observation(Live& s, const std::vector<int32_t>& ids) {
    for (int32_t id : ids) {
      s.out.completion_ids.push_back(id);
      s.out.sampled_logprobs.push_back(kNoLogprob);
      s.out.sampling_dist_logprobs.push_back(kNoLogprob);
      s.out.loss_mask.push_back(0);
      if (opts_.record_kept_ids) s.out.kept_ids.emplace_back();
      s.history.push_back(id);
      s.feed.push_back(id);
    }
  }

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
  std::vector<float> logits_, scratch_;
  std::map<std::string, const Tool*> tools_;
  const Tool* env_ = nullptr;  // the environment among the tools, if any
  std::unique_ptr<ToolRunner> runner_;  // episodes only; declared last: joined first
};

}  // namespace

Engine::Engine(const policy::Model<float>& model, EngineOptions options)
    : decoder_(model, options.absorbed), opts_(std::move(options)) {
  if (opts_.max_batch < 1) fail("max_batch must be >= 1");
}

std::vector<Rollout> Engine::generate(const std::vector<Request>& requests,
                                         const std::function<void(const Progress&)>& on_progress,
                                         const std::atomic<bool>* cancel) const {
  // Under bf16 each weight is packed once for the whole call instead of once per step.
  std::optional<Bf16WeightCache> weights;
  if (matmul_precision() == MatmulPrecision::bf16) weights.emplace();
  GenerateRun run(decoder_, opts_, requests);
  run.admit();
  run.retire(on_progress);
  while (run.busy()) {
    if (cancel != nullptr && cancel->load()) {
      run.cancel(on_progress);
      break;
    }
    run.step();
    run.retire(on_progress);
    run.admit();
    run.retire(on_progress);
  }
  return run.take_results();
}

}  // namespace aha::rollout
