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
  Completion out;
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

}  // namespace

Engine::Engine(const policy::Model<float>& model, EngineOptions options)
    : decoder_(model, options.absorbed), opts_(std::move(options)) {
  if (opts_.max_batch < 1) fail("max_batch must be >= 1");
}

std::vector<Completion> Engine::generate(const std::vector<Request>& requests,
                                         const std::function<void(const Progress&)>& on_progress,
                                         const std::atomic<bool>* cancel) const {
  const policy::ModelConfig& c = decoder_.model().config();
  const int max_pos = decoder_.model().rope().max_pos();
  const int K = std::max(1, c.num_experts_per_tok);
  std::vector<Completion> results;
  Progress progress;
  for (const auto& r : requests) {
    if (r.n < 1) fail("each request needs n >= 1");
    r.params.validate();
    if (!r.params.stop_strings.empty() && !opts_.detokenize) {
      fail("stop strings need a tokenizer");
    }
    progress.total += r.n;
  }
  std::deque<size_t> pending;
  for (size_t i = 0; i < requests.size(); ++i) pending.push_back(i);
  std::vector<std::unique_ptr<Live>> live;
  int64_t budget_used = 0;
  std::vector<float> logits, scratch;

  auto finish = [&](Live& s, const char* reason) {
    s.out.finish_reason = reason;
    s.done = true;
  };
  // Samples the next token of `s` from its logits row and decides whether it is done.
  auto advance = [&](Live& s, const float* row, std::vector<float>& buf) {
    const SamplingParams& p = *s.params;
    std::vector<int32_t> kept;
    TokenSample ts = sample_token(row, c.vocab_size, p, s.rng, s.history, buf,
                                  opts_.record_kept_ids ? &kept : nullptr);
    if (opts_.record_kept_ids) s.out.kept_ids.push_back(std::move(kept));
    s.out.ids.push_back(ts.token);
    s.out.logprobs.push_back(ts.logprob);
    s.out.policy_logprobs.push_back(ts.policy_logprob);
    s.out.n_kept.push_back(ts.n_kept);
    s.out.kept_min_logit.push_back(ts.kept_min_logit);
    s.history.push_back(ts.token);
    s.next = ts.token;
    bool is_stop = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), ts.token) !=
                   p.stop_token_ids.end();
    if (!is_stop && p.stop_token_ids.empty() && c.eos_token_id && ts.token == *c.eos_token_id) {
      is_stop = true;
    }
    if (!is_stop && !p.stop_strings.empty()) {
      std::string text = opts_.detokenize(s.out.ids);
      for (const auto& stop : p.stop_strings) is_stop = is_stop || text.find(stop) != std::string::npos;
    }
    if (is_stop) {
      finish(s, "stop");
    } else if (static_cast<int>(s.out.ids.size()) >= p.max_new_tokens ||
               s.cache.len + 1 >= max_pos) {
      finish(s, "length");
    }
  };

  auto admit = [&]() {
    while (!pending.empty()) {
      const size_t pi = pending.front();
      const Request& r = requests[pi];
      const int64_t want = std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) + r.params.max_new_tokens,
                                             max_pos) *
                           decoder_.cache_bytes_per_token();
      const bool fits = static_cast<int64_t>(live.size()) + r.n <= opts_.max_batch &&
                        budget_used + want * r.n <= opts_.cache_budget_bytes;
      if (!fits && !live.empty()) return;
      pending.pop_front();
      std::string err = check_prompt(r.prompt, c, max_pos);
      if (!err.empty()) {
        for (int s = 0; s < r.n; ++s) {
          Completion bad;
          bad.prompt_index = static_cast<int64_t>(pi);
          bad.sample_index = s;
          bad.finish_reason = "error";
          bad.error = err;
          results.push_back(std::move(bad));
          ++progress.done;
        }
        continue;
      }
      SeqCache prompt_cache;
      std::vector<float> prompt_logits;
      Routing prompt_routing;
      decoder_.prefill(r.prompt, prompt_cache, prompt_logits,
                       opts_.record_routing ? &prompt_routing : nullptr);
      for (int s = 0; s < r.n; ++s) {
        auto seq = std::make_unique<Live>();
        seq->out.prompt_index = static_cast<int64_t>(pi);
        seq->out.sample_index = s;
        seq->cache = prompt_cache;
        const uint64_t stream = r.stream >= 0 ? static_cast<uint64_t>(r.stream) : static_cast<uint64_t>(pi);
        seq->rng = Rng(opts_.seed, (stream << 24) + static_cast<uint64_t>(s));
        seq->history = r.prompt;
        seq->params = &r.params;
        seq->reserved_bytes = want;
        if (opts_.record_routing) seq->out.routing = prompt_routing;
        budget_used += want;
        advance(*seq, prompt_logits.data(), scratch);
        live.push_back(std::move(seq));
      }
    }
  };

  auto retire = [&]() {
    for (auto& s : live) {
      if (!s->done) continue;
      budget_used -= s->reserved_bytes;
      progress.tokens += static_cast<int64_t>(s->out.ids.size());
      ++progress.done;
      results.push_back(std::move(s->out));
    }
    live.erase(std::remove_if(live.begin(), live.end(), [](const auto& s) { return s->done; }),
               live.end());
    if (on_progress) on_progress(progress);
  };

  admit();
  retire();
  while (!live.empty() || !pending.empty()) {
    if (cancel != nullptr && cancel->load()) {
      for (auto& s : live) finish(*s, "cancelled");
      retire();
      for (size_t pi : pending) {
        for (int s = 0; s < requests[pi].n; ++s) {
          Completion cut;
          cut.prompt_index = static_cast<int64_t>(pi);
          cut.sample_index = s;
          cut.finish_reason = "cancelled";
          results.push_back(std::move(cut));
        }
      }
      pending.clear();
      break;
    }
    if (!live.empty()) {
      std::vector<int32_t> tokens;
      std::vector<SeqCache*> caches;
      for (auto& s : live) {
        tokens.push_back(s->next);
        caches.push_back(&s->cache);
      }
      Routing step_routing;
      decoder_.decode(tokens, caches, logits, opts_.record_routing ? &step_routing : nullptr);
      if (opts_.record_routing) {
        for (size_t b = 0; b < live.size(); ++b) append_routing(live[b]->out.routing, step_routing, b, K);
      }
      tbb::parallel_for(size_t{0}, live.size(), [&](size_t b) {
        thread_local std::vector<float> buf;
        advance(*live[b], logits.data() + b * c.vocab_size, buf);
      });
    }
    retire();
    admit();
    retire();
  }
  std::sort(results.begin(), results.end(), [](const Completion& a, const Completion& b) {
    return a.prompt_index != b.prompt_index ? a.prompt_index < b.prompt_index
                                            : a.sample_index < b.sample_index;
  });
  return results;
}

}  // namespace aha::rollout
