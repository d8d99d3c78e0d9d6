// Sampling a step's rollouts: prompts from the data cursor, G completions each from the
// rollout engine, rule-based rewards, and DAPO's dynamic sampling (groups whose rewards are all
// equal teach nothing: they are logged but left out, and fresh prompts refill the batch).
// Under asynchronous rollouts this runs on the rollout queue's thread: it reads the config, data,
// tokenizer, template and rewards (all immutable) and advances the data cursor, which only it
// touches while the queue lives; run.db stays with the trainer's thread.
#include <chrono>
#include <cmath>
#include <map>
#include <filesystem>
#include <span>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"
#include "aha/rollout/engine.h"
#include "aha/train/checkpointer.h"
#include "aha/train/sample_score.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace fs = std::filesystem;

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

rollout::EngineOptions engine_options(const TrainConfig& cfg, const policy::Model<float>& policy,
                                      int64_t step, int round) {
  const GrpoConfig& g = cfg.grpo;
  rollout::EngineOptions eo;
  // Round 0 keeps the seed of a run without dynamic sampling; refills get fresh streams.
  eo.seed = cfg.seed * 1000003ULL + static_cast<uint64_t>(step) +
            uint64_t(round) * 0x9E3779B97F4A7C15ULL;
  eo.max_batch = g.max_batch;
  eo.record_routing = g.keep_routing && !policy.replay_widths().empty();
  eo.record_kept_ids = g.keep_sampling_mask;
  eo.episodes = cfg.episodes.engine_options();
  eo.speculative = g.speculative;
  if (g.speculative && policy.mtp() == nullptr) {
    fail("grpo.speculative drafts with the policy's MTP module, and it has none "
         "(num_nextn_predict_layers: 1)");
  }
  if (g.speculative && policy.config().engram) fail("grpo.speculative does not run Engram models");
  return eo;
}

// This rank's groups of a rollout file: a contiguous share of the groups.
std::vector<Rollout> file_share(const std::vector<Rollout>& file) {
  if (!dist::active()) return file;
  int64_t groups = 0;
  for (const Rollout& r : file) groups = std::max(groups, r.group + 1);
  const auto [lo, hi] = dist::share(groups);
  std::vector<Rollout> out;
  for (const Rollout& r : file) {
    if (r.group >= lo && r.group < hi) out.push_back(r);
  }
  return out;
}

}  // namespace

SampledBatch Trainer::State::sample_rollouts(const policy::Model<float>& model, int64_t at,
                                             int64_t version) const {
  const GrpoConfig& g = cfg.grpo;
  SampledBatch batch;
  batch.step = at;
  batch.version = version;
  Json& m = batch.metrics;
  std::vector<Rollout>& rs = batch.rollouts;
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
    std::vector<train::Prompt> prompts;
    for (int64_t ex : picked) prompts.push_back({&data[ex].row, data[ex].id});
    train::SampleOptions so;
    so.n = g.group_size;
    so.sampling = cfg.sampling;
    so.engine = engine_options(cfg, model, at - 1, round);
    so.first_stream = lo;
    auto sampled = train::sample(model, *tok, *templ, prompts, so);
    auto t1 = Clock::now();

    const size_t first = rs.size();
    std::vector<const Json*> rows;
    for (Rollout& r : sampled) {
      rows.push_back(prompts[r.group].row);
      r.group += next_group + lo;
      r.learn = !(g.mask_truncated && r.finish_reason == "length");
      r.policy_version = version;
      gen_tokens += r.n();
      rs.push_back(std::move(r));
    }
    train::score(std::span<Rollout>(rs).subspan(first), rows, rewards, acc_label,
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
      batch.warnings.push_back("only " + std::to_string(useful) + " of " +
                               std::to_string(g.prompts_per_step) +
                               " groups had unequal rewards after " + std::to_string(round) +
                               " rounds");
    }
  }
  return batch;
}

std::vector<Rollout> Trainer::State::step_rollouts(Json& m) {
  if (!file_rollouts.empty()) return file_share(file_rollouts);
  SampledBatch b;
  if (queue) {
    queue->publish(step, policy->params());
    const auto t0 = Clock::now();
    b = queue->take(step + 1);
    // How long training waited for rollouts: near 0 when sampling keeps ahead.
    m["time_wait_rollout"] = secs(t0, Clock::now());
  } else {
    b = sample_rollouts(*policy, step + 1, step);
  }
  for (const std::string& w : b.warnings) log_event(step + 1, "warn", "dynamic_sampling", w);
  m.update(b.metrics);
  m["staleness"] = step - b.version;
  return std::move(b.rollouts);
}

void Trainer::State::start_queue(const std::string& dir) {
  const GrpoConfig& g = cfg.grpo;
  if (g.max_staleness == 0) return;
  if (dist::active()) {
    // The sampling thread's collectives (dynamic sampling, token counts) would interleave with
    // the trainer's gradient all-reduce in a different order on each rank.
    fail("grpo.max_staleness runs on one rank for now: drop it or run without mpirun");
  }
  std::vector<SampledBatch> queued;
  const fs::path file = fs::path(dir) / "rollout_queue.json";
  if (!dir.empty() && fs::exists(file)) {
    const auto limits = rollout_limits(policy->config(), policy->rope().max_pos());
    for (const Json& b : load_json_file(file.string())) queued.push_back(batch_from_json(b, limits));
  }
  if (g.is_correction == IsCorrection::kNone) {
    log_event(step, "warn", "staleness",
              "grpo.max_staleness > 0 learns from rollouts of older weights without correcting "
              "for them: set grpo.is_correction (tis or mis)");
  }
  queue = std::make_unique<RolloutQueue>(
      train::load_policy(cfg.model, cfg.lora, cfg.seed, policy::ExpertParallel{}), g.max_staleness,
      step, g.steps, std::move(queued),
      [this](const policy::Model<float>& model, int64_t at, int64_t version) {
        return sample_rollouts(model, at, version);
      });
}

}  // namespace aha::grpo
