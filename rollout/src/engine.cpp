// The continuous-batching scheduler around the decoder.
#include "aha/rollout/engine.h"

#include <tbb/parallel_for.h>

#include <algorithm>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/weight_cache.h"
#include "generate_run.h"

namespace aha::rollout {

namespace detail {

namespace {

// log softmax(row / temperature)[token] (temperature <= 0: 1).
float logprob_of(const float* row, int vocab, int32_t token, double temperature) {
  const double inv = temperature > 0 ? 1.0 / temperature : 1.0;
  return static_cast<float>(double(row[token]) * inv - log_sum_exp(row, vocab, inv));
}

std::string check_prompt(const std::vector<int32_t>& prompt, const policy::ModelConfig& c,
                         int max_pos) {
  if (prompt.empty()) return "empty prompt";
  if (static_cast<int64_t>(prompt.size()) >= max_pos) {
    return "prompt of " + std::to_string(prompt.size()) +
           " tokens leaves no room in the context of " + std::to_string(max_pos);
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= c.vocab_size) {
      return "token id " + std::to_string(id) + " outside the vocabulary [0, " +
             std::to_string(c.vocab_size) + ")";
    }
  }
  return "";
}

}  // namespace

void append_routing(Routing& dst, const Routing& src, int64_t row, int64_t rows) {
  if (dst.empty()) dst.resize(src.size());
  for (size_t m = 0; m < src.size(); ++m) {
    const int64_t w = static_cast<int64_t>(src[m].size()) / rows;
    dst[m].insert(dst[m].end(), src[m].begin() + row * w, src[m].begin() + (row + 1) * w);
  }
}

GenerateRun::GenerateRun(const Decoder& decoder, const EngineOptions& opts,
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
      if (env_ != nullptr)
        fail("rollout.tools: at most one environment (", env_->name(), ", ", t->name(), ")");
      env_ = t;
    }
    runner_ = std::make_unique<ToolRunner>(ep.tool_threads);
  }
  for (size_t i = 0; i < requests.size(); ++i) pending_.push_back(i);
}

void GenerateRun::admit() {
  // The groups admitted together are prefilled together (their prompts share the GEMMs).
  std::vector<std::pair<size_t, int64_t>> starts;  // (request, cache bytes per sequence)
  int64_t starting = 0, starting_bytes = 0;
  while (!pending_.empty()) {
    const size_t pi = pending_.front();
    const Request& r = requests_[pi];
    const int64_t want = sequence_tokens(r) * decoder_.cache_bytes_per_token();
    const bool fits =
        static_cast<int64_t>(live_.size()) + starting + r.n <= opts_.max_batch &&
        budget_used_ + starting_bytes + want * r.n <= opts_.cache_budget_bytes;
    if (!fits && !(live_.empty() && starts.empty())) break;
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
    starts.emplace_back(pi, want);
    starting += r.n;
    starting_bytes += want * r.n;
  }
  start_groups(starts);
  if (runner_) dispatch_calls();
}

void GenerateRun::step() {
  if (opts_.speculative) {
    step_speculative();
    return;
  }
  std::vector<Live*> active;
  for (auto& s : live_) {
    if (!s->waiting && !s->done) active.push_back(s.get());
  }
  if (active.empty()) {
    // Expert parallel: the step is collective; this rank's experts serve the others' rows.
    if (decoder_.lockstep()) decoder_.decode({}, {}, logits_);
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

void GenerateRun::retire(const std::function<void(const Progress&)>& on_progress) {
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

void GenerateRun::cancel(const std::function<void(const Progress&)>& on_progress) {
  // Running tool calls hold their sequences: wait for them (each is time-limited).
  while (runner_ && runner_->running() > 0) runner_->take(true);
  for (auto& s : live_) finish(*s, "cancelled");
  retire(on_progress);
  for (size_t pi : pending_) {
    for (int s = 0; s < requests_[pi].n; ++s) results_.push_back(placeholder(pi, s, "cancelled"));
  }
  pending_.clear();
}

std::vector<Rollout> GenerateRun::take_results() {
  std::sort(results_.begin(), results_.end(), [](const Rollout& a, const Rollout& b) {
    return a.group != b.group ? a.group < b.group : a.sample_index < b.sample_index;
  });
  return std::move(results_);
}

Rollout GenerateRun::placeholder(size_t pi, int s, const char* reason) const {
  Rollout out;
  out.group = static_cast<int64_t>(pi);
  out.prompt_ids = requests_[pi].prompt;
  out.sample_index = s;
  out.finish_reason = reason;
  return out;
}

void GenerateRun::finish(Live& s, const char* reason) {
  s.out.finish_reason = reason;
  s.done = true;
}

void GenerateRun::start_groups(const std::vector<std::pair<size_t, int64_t>>& starts) {
  if (starts.empty()) {
    // Expert parallel: every rank prefills together, with or without prompts of its own.
    if (decoder_.lockstep()) decoder_.prefill({}, {}, logits_);
    return;
  }
  const size_t G = starts.size();
  std::vector<SeqCache> prompt_caches(G);
  std::vector<const std::vector<int32_t>*> prompts;
  std::vector<SeqCache*> caches;
  for (size_t g = 0; g < G; ++g) {
    prompts.push_back(&requests_[starts[g].first].prompt);
    prompt_caches[g].draft.on = opts_.speculative;
    caches.push_back(&prompt_caches[g]);
  }
  std::vector<float> logits;
  std::vector<Routing> routings;
  decoder_.prefill(prompts, caches, logits, opts_.record_routing ? &routings : nullptr);
  if (opts_.speculative) {  // the MTP module's prompt rows, once per group
    std::vector<std::vector<int32_t>> next;
    for (const auto* p : prompts) next.emplace_back(p->begin() + 1, p->end());
    std::vector<float> unused;
    decoder_.draft(caches, next, unused, true);
  }
  for (size_t g = 0; g < G; ++g) {
    const float* row = logits.data() + g * c_.vocab_size;
    start_group(starts[g].first, starts[g].second, prompt_caches[g],
                std::vector<float>(row, row + c_.vocab_size),
                opts_.record_routing ? routings[g] : Routing{});
  }
}

void GenerateRun::start_group(size_t pi, int64_t want, const SeqCache& prompt_cache,
                              const std::vector<float>& prompt_logits,
                              const Routing& prompt_routing) {
  const Request& r = requests_[pi];
  for (int s = 0; s < r.n; ++s) {
    auto seq = std::make_unique<Live>();
    seq->out.group = static_cast<int64_t>(pi);
    seq->out.sample_index = s;
    seq->out.prompt_ids = r.prompt;
    seq->out.prompt_text = r.text;
    // Room for the whole sequence first: the copy keeps it, and the decode steps then append
    // without reallocating (the budget already counts these bytes).
    decoder_.reserve(seq->cache, sequence_tokens(r));
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

void GenerateRun::advance(Live& s, const float* row, std::vector<float>& buf) const {
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
  take(s, ts, std::move(kept), s.cache.len);
}

void GenerateRun::take(Live& s, const TokenSample& ts, std::vector<int32_t> kept,
                       int64_t fed) const {
  const SamplingParams& p = *s.params;
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
  if (s.out.n() >= p.max_new_tokens || fed + 1 >= max_pos_ ||
      (runner_ && turn_cap > 0 && s.out.n() - s.turn_begin >= turn_cap)) {
    finish(s, "length");
  }
}

std::string GenerateRun::turn_text(const Live& s) const {
  return opts_.detokenize(std::vector<int32_t>(s.out.completion_ids.begin() + s.turn_begin,
                                               s.out.completion_ids.end()));
}

bool GenerateRun::is_stop(const Live& s, int32_t token) const {
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

}  // namespace detail

using detail::GenerateRun;

Engine::Engine(const policy::Model<float>& model, EngineOptions options)
    : decoder_(model, options.absorbed), opts_(std::move(options)) {
  if (opts_.max_batch < 1) fail("max_batch must be >= 1");
  if (opts_.speculative) {
    const policy::ModelConfig& c = model.config();
    if (!decoder_.can_draft()) {
      fail(
          "speculative decoding drafts with the MTP module: the model has none "
          "(num_nextn_predict_layers: 1)");
    }
    if (opts_.episodes.enabled()) fail("speculative decoding does not run tool-using episodes");
    if (opts_.force_token) fail("speculative decoding does not take forced tokens");
    if (c.engram) fail("speculative decoding does not run Engram models");
  }
  if (decoder_.lockstep()) {
    // Lockstep covers the plain decode loop: one prefill and one decode pass per iteration.
    const char* what = opts_.speculative        ? "speculative decoding"
                       : opts_.episodes.enabled() ? "tool-using episodes (rollout.tools)"
                       : model.config().engram    ? "Engram models (config.json engram)"
                                                  : nullptr;
    if (what != nullptr) fail("parallel.ep: the sharded rollout engine does not run ", what, " yet");
  }
}

std::vector<Rollout> Engine::generate(const std::vector<Request>& requests,
                                      const std::function<void(const Progress&)>& on_progress,
                                      const std::atomic<bool>* cancel) const {
  // Each weight is packed once for the whole call instead of once per step.
  const WeightCache weights(decoder_.model().params().data(),
                            static_cast<int64_t>(decoder_.model().params().size()));
  GenerateRun run(decoder_, opts_, requests);
  run.admit();
  run.retire(on_progress);
  while (true) {
    double state[2] = {run.busy() ? 1.0 : 0.0, cancel != nullptr && cancel->load() ? 1.0 : 0.0};
    // Expert parallel: a rank whose sequences are done steps on while any rank has work, and
    // a cancel anywhere ends every rank's loop at the same iteration.
    if (decoder_.lockstep()) dist::allreduce_max(state, 2, "rollout steps");
    if (state[0] == 0.0) break;
    if (state[1] != 0.0) {
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
