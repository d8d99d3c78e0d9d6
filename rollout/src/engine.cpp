// The continuous-batching scheduler around the decoder.
#include "aha/rollout/engine.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <deque>
#include <memory>

#include "aha/core/error.h"
#include "aha/core/rng.h"

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
};

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

void append_routing(Routing& dst, const Routing& src, int64_t row, int K) {
  if (dst.empty()) dst.resize(src.size());
  for (size_t m = 0; m < src.size(); ++m) {
    dst[m].insert(dst[m].end(), src[m].begin() + row * K, src[m].begin() + (row + 1) * K);
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
  }

  // One decode step of every live sequence, then each samples its next token.
  void step() {
    if (live_.empty()) return;
    std::vector<int32_t> tokens;
    std::vector<SeqCache*> caches;
    for (auto& s : live_) {
      tokens.push_back(s->next);
      caches.push_back(&s->cache);
    }
    Routing step_routing;
    decoder_.decode(tokens, caches, logits_, opts_.record_routing ? &step_routing : nullptr);
    if (opts_.record_routing) {
      const int K = std::max(1, c_.num_experts_per_tok);
      for (size_t b = 0; b < live_.size(); ++b) {
        append_routing(live_[b]->out.routing, step_routing, static_cast<int64_t>(b), K);
      }
    }
    tbb::parallel_for(size_t{0}, live_.size(), [&](size_t b) {
      thread_local std::vector<float> buf;
      advance(*live_[b], logits_.data() + b * c_.vocab_size, buf);
    });
  }

  // Moves finished sequences to the results and frees their budget.
  void retire(const std::function<void(const Progress&)>& on_progress) {
    for (auto& s : live_) {
      if (!s->done) continue;
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
      seq->cache = prompt_cache;
      const uint64_t stream =
          r.stream >= 0 ? static_cast<uint64_t>(r.stream) : static_cast<uint64_t>(pi);
      seq->rng = Rng(opts_.seed, (stream << 24) + static_cast<uint64_t>(s));
      seq->history = r.prompt;
      seq->params = &r.params;
      seq->reserved_bytes = want;
      if (opts_.record_routing) seq->out.routing = prompt_routing;
      budget_used_ += want;
      advance(*seq, prompt_logits.data(), scratch_);
      live_.push_back(std::move(seq));
    }
  }

  // Samples the next token of `s` from its logits row and decides whether it is done.
  void advance(Live& s, const float* row, std::vector<float>& buf) const {
    const SamplingParams& p = *s.params;
    std::vector<int32_t> kept;
    TokenSample ts = sample_token(row, c_.vocab_size, p, s.rng, s.history, buf,
                                  opts_.record_kept_ids ? &kept : nullptr);
    if (opts_.record_kept_ids) s.out.kept_ids.push_back(std::move(kept));
    s.out.completion_ids.push_back(ts.token);
    s.out.sampling_dist_logprobs.push_back(ts.logprob);
    s.out.sampled_logprobs.push_back(ts.policy_logprob);
    s.history.push_back(ts.token);
    s.next = ts.token;
    if (is_stop(s, ts.token)) {
      finish(s, "stop");
    } else if (s.out.n() >= p.max_new_tokens ||
               s.cache.len + 1 >= max_pos_) {
      finish(s, "length");
    }
  }

  bool is_stop(const Live& s, int32_t token) const {
    const SamplingParams& p = *s.params;
    if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) !=
        p.stop_token_ids.end()) {
      return true;
    }
    if (p.stop_token_ids.empty() && c_.eos_token_id && token == *c_.eos_token_id) return true;
    if (p.stop_strings.empty()) return false;
    const std::string text = opts_.detokenize(s.out.completion_ids);
    for (const auto& stop : p.stop_strings) {
      if (text.find(stop) != std::string::npos) return true;
    }
    return false;
  }

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
};

}  // namespace

Engine::Engine(const policy::Model<float>& model, EngineOptions options)
    : decoder_(model, options.absorbed), opts_(std::move(options)) {
  if (opts_.max_batch < 1) fail("max_batch must be >= 1");
}

std::vector<Rollout> Engine::generate(const std::vector<Request>& requests,
                                         const std::function<void(const Progress&)>& on_progress,
                                         const std::atomic<bool>* cancel) const {
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
