// Sampling a step's rollouts: prompts from the data cursor, G completions each from the
// rollout engine, rule-based rewards, and DAPO's dynamic sampling (groups whose rewards are all
// equal teach nothing: they are logged but left out, and fresh prompts refill the batch).
#include <chrono>
#include <cmath>
#include <map>
#include <span>

#include "aha/core/dist.h"
#include "aha/rollout/engine.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace {

using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Marks the rollouts of groups whose finite rewards are all equal (or absent); returns how
// many groups of [first, end) still teach something.
int64_t mark_flat_groups(std::vector<Rollout>& rs, size_t first) {
  std::map<int64_t, std::pair<double, double>> range;
  for (size_t i = first; i < rs.size(); ++i) {
    const double r = std::isfinite(rs[i].reward) ? rs[i].reward : 0.0;
    auto [it, fresh] = range.try_emplace(rs[i].group, r, r);
    if (!fresh) it->second = {std::min(it->second.first, r), std::max(it->second.second, r)};
  }
  int64_t useful = 0;
  for (size_t i = first; i < rs.size(); ++i) {
    auto [lo, hi] = range[rs[i].group];
    if (lo == hi) rs[i].learn = false;
  }
  for (const auto& [g, r] : range) useful += r.first != r.second;
  return useful;
}

// Process supervision: the first reward whose details carry "steps" ([{"end": byte offset in
// the completion text, "reward": r}]) gives the step rewards; byte offsets become token ends
// through each token's decoded length.
void set_step_rewards(Rollout& r, const Json& details, const tokenizer::Tokenizer& tok) {
  for (const auto& [label, d] : details.items()) {
    if (!d.is_object() || !d.contains("steps") || !d["steps"].is_array()) continue;
    std::vector<int64_t> cum(r.completion_ids.size());
    int64_t bytes = 0;
    for (size_t i = 0; i < r.completion_ids.size(); ++i) {
      const int32_t id = r.completion_ids[i];
      bytes += static_cast<int64_t>(tok.decode(std::span<const int32_t>(&id, 1), true).size());
      cum[i] = bytes;
    }
    int64_t last = 0;
    for (const Json& st : d["steps"]) {
      if (!st.is_object() || !st.contains("end") || !st.contains("reward")) continue;
      const int64_t end_byte = st["end"].get<int64_t>();
      auto it = std::lower_bound(cum.begin(), cum.end(), end_byte);
      int64_t end = std::min<int64_t>(r.n(), (it - cum.begin()) + 1);
      if (end <= last) continue;  // two steps inside one token: the first one counts
      r.step_ends.push_back(end);
      r.step_rewards.push_back(st["reward"].get<double>());
      last = end;
    }
    return;
  }
}

rollout::EngineOptions engine_options(const TrainConfig& cfg, const policy::Model<float>& policy,
                                      const tokenizer::Tokenizer& tok, int64_t step, int round) {
  const GrpoConfig& g = cfg.grpo;
  rollout::EngineOptions eo;
  // Round 0 keeps the seed of a run without dynamic sampling; refills get fresh streams.
  eo.seed = cfg.seed * 1000003ULL + static_cast<uint64_t>(step) +
            uint64_t(round) * 0x9E3779B97F4A7C15ULL;
  eo.max_batch = g.max_batch;
  eo.record_routing = g.keep_routing && !policy.replay_widths().empty();
  eo.record_kept_ids = g.keep_sampling_mask;
  const tokenizer::Tokenizer* t = &tok;
  eo.detokenize = [t](const std::vector<int32_t>& ids) {
    return t->decode(tokenizer::known_ids(*t, ids));
  };
  eo.episodes = cfg.episodes.engine_options();
  if (eo.episodes.enabled()) {
    eo.episodes.tokenize = [t](const std::string& text) { return t->encode(text, false); };
  }
  return eo;
}

// The rule-based rewards of rs (rows[i]: the data row of rs[i]); with `steps_tok`, process
// supervision's step rewards too.
void score(std::span<Rollout> rs, const std::vector<const Json*>& rows,
           const rewards::RewardSet& rewards, const std::string& acc_label,
           const tokenizer::Tokenizer* steps_tok) {
  std::vector<rewards::Sample> samples(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    samples[i] = {rs[i].prompt_text, rs[i].completion_text, rows[i], rs[i].n()};
  }
  auto scored = rewards.score_batch(samples);
  for (size_t i = 0; i < rs.size(); ++i) {
    Rollout& r = rs[i];
    // A broken, hanging or hostile tool ends its episode with reward 0, whatever the text says.
    r.reward = r.finish_reason == "error"        ? std::nan("")
               : r.finish_reason == "tool_error" ? 0.0
                                                 : scored[i].reward;
    auto it = scored[i].rewards.find(acc_label);
    r.correct = it == scored[i].rewards.end() ? -1 : (it->second > 0.5 ? 1 : 0);
    if (r.finish_reason == "tool_error" && r.correct == 1) r.correct = 0;
    for (const auto& [label, v] : scored[i].rewards) {
      r.reward_parts.emplace_back(label, v, scored[i].details.value(label, Json::object()));
    }
    if (steps_tok != nullptr) set_step_rewards(r, scored[i].details, *steps_tok);
  }
}

}  // namespace

std::vector<Rollout> Trainer::State::sample_rollouts(Json& m) {
  const GrpoConfig& g = cfg.grpo;
  std::vector<Rollout> rs;
  double t_rollout = 0, t_reward = 0;
  int64_t gen_tokens = 0, useful = 0, dropped = 0, next_group = 0;
  const int rounds = g.dynamic_sampling ? g.dynamic_sampling_max_rounds : 1;
  int round = 0;
  for (; round < rounds && useful < g.prompts_per_step; ++round) {
    auto t0 = Clock::now();
    const int64_t want = round == 0 ? g.prompts_per_step : g.prompts_per_step - useful;
    // Every rank draws the same global prompts; each samples its contiguous share, whole
    // groups only, with the RNG streams of the prompts' global indices.
    std::vector<int64_t> all = cursor->next(want);
    const auto [lo, hi] = dist::share(static_cast<int64_t>(all.size()));
    std::vector<int64_t> picked(all.begin() + lo, all.begin() + hi);
    std::vector<std::string> prompt_text;
    std::vector<rollout::Request> reqs;
    for (int64_t ex : picked) {
      prompt_text.push_back(templ->render_row(data[ex].row));
      rollout::Request r;
      r.prompt = tok->encode(prompt_text.back(), true);
      r.text = prompt_text.back();
      r.n = g.group_size;
      r.params = cfg.sampling;
      r.params.stop_at_eos(tok->eos_id());
      r.stream = lo + static_cast<int64_t>(reqs.size());
      reqs.push_back(std::move(r));
    }
    auto comps = rollout::Engine(*policy, engine_options(cfg, *policy, *tok, step, round))
                     .generate(reqs);
    auto t1 = Clock::now();

    const size_t first = rs.size();
    std::vector<const Json*> rows;
    for (Rollout& r : comps) {
      const int64_t p = r.group;  // the request's index
      rows.push_back(&data[picked[p]].row);
      r.group = next_group + lo + p;
      r.prompt_id = data[picked[p]].id;
      r.prompt_text = prompt_text[p];
      r.completion_text = tok->decode_utf8(tokenizer::known_ids(*tok, r.completion_ids), true);
      // The engine's turn texts are raw bytes (a sampled token may end inside a character):
      // run.db keeps valid UTF-8.
      for (Turn& t : r.turns) {
        const std::span<const int32_t> span(r.completion_ids.data() + t.begin, t.end - t.begin);
        t.text = tok->decode_utf8(tokenizer::known_ids(*tok, span), true);
      }
      r.learn = !(g.mask_truncated && r.finish_reason == "length");
      gen_tokens += r.n();
      rs.push_back(std::move(r));
    }
    score(std::span<Rollout>(rs).subspan(first), rows, rewards, acc_label,
          g.advantage == AdvantageMode::kProcess ? tok.get() : nullptr);
    next_group += static_cast<int64_t>(all.size());
    if (g.dynamic_sampling) {
      // Counted over all ranks, so that every rank refills alike and the data cursors agree.
      int64_t u = mark_flat_groups(rs, first);
      dist::allreduce_sum(&u, 1, "useful groups");
      useful += u;
      dropped += static_cast<int64_t>(all.size()) - u;
    } else {
      useful += static_cast<int64_t>(all.size());
    }
    t_rollout += secs(t0, t1);
    t_reward += secs(t1, Clock::now());
  }
  // Throughput of all ranks together: their tokens over the slowest rank's time.
  double tok_sum = double(gen_tokens), t_max = t_rollout;
  dist::allreduce_sum(&tok_sum, 1, "token counts");
  dist::allreduce_max(&t_max, 1, "rollout times");
  m["tokens_per_s"] = tok_sum / std::max(1e-9, t_max);
  m["time_rollout"] = t_rollout;
  m["time_reward"] = t_reward;
  m["groups_dropped"] = dropped;
  if (g.dynamic_sampling) {
    m["sampling_rounds"] = round;
    m["groups_useful"] = useful;
    if (useful < g.prompts_per_step) {
      log_event(step + 1, "warn", "dynamic_sampling",
                "only " + std::to_string(useful) + " of " + std::to_string(g.prompts_per_step) +
                    " groups had unequal rewards after " + std::to_string(round) + " rounds");
    }
  }
  return rs;
}

}  // namespace aha::grpo
