// Strict parsing of the GRPO run config (unknown keys are errors).
#include <algorithm>

#include "aha/core/error.h"
#include "aha/datasets/source.h"
#include "aha/grpo/trainer.h"

namespace aha::grpo {

namespace {

IsCorrection parse_is_correction(const std::string& s) {
  if (s == "none") return IsCorrection::kNone;
  if (s == "tis") return IsCorrection::kTis;
  if (s == "mis") return IsCorrection::kMis;
  fail("grpo.is_correction must be none, tis or mis (got '", s, "')");
}

// The keys of the objective: clipping, KL, losses, importance sampling, advantages.
void read_objective(StrictReader& r, GrpoConfig& g) {
  g.beta = r.get<double>("beta", g.beta);
  g.kl_estimator = LossConfig::parse_kl(r.get<std::string>("kl_estimator", "k3"));
  g.kl_in_reward = r.get<bool>("kl_in_reward", g.kl_in_reward);
  g.kl_reward_coef = r.get<double>("kl_reward_coef", g.kl_reward_coef);
  g.eps_low = r.get<double>("eps_low", g.eps_low);
  g.eps_high = r.get<double>("eps_high", g.eps_high);
  g.dual_clip = r.get<double>("dual_clip", g.dual_clip);
  g.ratio_level = LossConfig::parse_level(r.get<std::string>("ratio_level", "token"));
  g.loss_agg = LossConfig::parse_agg(r.get<std::string>("loss_agg", "seq-mean-token-mean"));
  g.policy_loss = LossConfig::parse_policy(r.get<std::string>("policy_loss", "clip"));
  g.sapo_tau_pos = r.get<double>("sapo_tau_pos", g.sapo_tau_pos);
  g.sapo_tau_neg = r.get<double>("sapo_tau_neg", g.sapo_tau_neg);
  g.entropy_coef = r.get<double>("entropy_coef", g.entropy_coef);
  g.mtp_weight = r.get<double>("mtp_weight", g.mtp_weight);
  g.entropy_target = r.get<double>("entropy_target", g.entropy_target);
  g.entropy_coef_lr = r.get<double>("entropy_coef_lr", g.entropy_coef_lr);
  g.is_correction = parse_is_correction(r.get<std::string>("is_correction", "none"));
  const std::string is_level = r.get<std::string>("is_level", "token");
  if (is_level != "token" && is_level != "sequence") {
    fail("grpo.is_level must be token or sequence (got '", is_level, "')");
  }
  g.is_level = LossConfig::parse_level(is_level);
  g.is_cap = r.get<double>("is_cap", g.is_cap);
  g.advantage = AdvantageConfig::parse_mode(r.get<std::string>("advantage", "grpo"));
  g.scale_rewards = AdvantageConfig::parse_scale(r.get<std::string>("scale_rewards", "group"));
  g.ref_reset_every = r.get<int>("ref_reset_every", g.ref_reset_every);
  g.ref_ema = r.get<double>("ref_ema", g.ref_ema);
  g.offpolicy_delta = r.get<double>("offpolicy_delta", g.offpolicy_delta);
  g.bias_update_gamma = r.get<double>("bias_update_gamma", g.bias_update_gamma);
  g.aux_loss_weight = r.get<double>("aux_loss_weight", g.aux_loss_weight);
}

// The keys of the schedule: sizes, sampling, evaluation, checkpoints and logging.
void read_schedule(StrictReader& r, GrpoConfig& g) {
  g.steps = r.get<int>("steps", g.steps);
  g.prompts_per_step = r.get<int>("prompts_per_step", g.prompts_per_step);
  g.group_size = r.get<int>("group_size", g.group_size);
  g.num_iterations = r.get<int>("num_iterations", g.num_iterations);
  g.minibatch_size = r.get<int>("minibatch_size", g.minibatch_size);
  g.micro_batch_size = r.get<int>("micro_batch_size", g.micro_batch_size);
  g.keep_routing = r.get<bool>("keep_routing", g.keep_routing);
  g.keep_sampling_mask = r.get<bool>("keep_sampling_mask", g.keep_sampling_mask);
  g.dynamic_sampling = r.get<bool>("dynamic_sampling", g.dynamic_sampling);
  g.dynamic_sampling_max_rounds = r.get<int>("dynamic_sampling_max_rounds", g.dynamic_sampling_max_rounds);
  g.mask_truncated = r.get<bool>("mask_truncated", g.mask_truncated);
  g.eval_every = r.get<int>("eval_every", g.eval_every);
  g.eval_n = r.get<int>("eval_n", g.eval_n);
  g.eval_size = r.get<int>("eval_size", g.eval_size);
  g.keep_checkpoints = r.get<int>("keep_checkpoints", g.keep_checkpoints);
  g.max_nan_skips = r.get<int>("max_nan_skips", g.max_nan_skips);
  g.save_every = r.get<int>("save_every", g.save_every);
  g.report_every = r.get<int>("report_every", g.report_every);
  g.max_batch = r.get<int>("max_batch", g.max_batch);
  g.max_staleness = r.get<int>("max_staleness", g.max_staleness);
  g.speculative = r.get<bool>("speculative", g.speculative);
  g.log_tokens = r.get<bool>("log_tokens", g.log_tokens);
  g.threads = r.get<int>("threads", g.threads);
  g.checksum_every = r.get<int>("checksum_every", g.checksum_every);
}

void check_esft(const Json& esft) {
  StrictReader e(esft, "grpo.esft");
  const double share = e.get<double>("share", 0.9);
  e.get<bool>("include_shared", true);
  e.get<std::string>("metric", "gate");
  const int prompts = e.get<int>("prompts", 64);
  e.finish();
  if (!(share > 0 && share <= 1)) fail("grpo.esft.share must be in (0, 1]");
  if (prompts < 1) fail("grpo.esft.prompts must be >= 1");
}

// parallel.ep shards the policy's and the reference's experts for rollouts, scoring and
// updates alike; what still needs every expert on a rank (or a per-rank state of its own) is
// refused, one key named.
void check_expert_parallel(const TrainConfig& c) {
  const GrpoConfig& g = c.grpo;
  const char* key = g.speculative                ? "grpo.speculative"
                    : !c.episodes.tools.empty()  ? "rollout.tools"
                    : !g.esft.is_null()          ? "grpo.esft"
                    : g.ref_reset_every > 0      ? "grpo.ref_reset_every"
                    : g.ref_ema > 0              ? "grpo.ref_ema"
                    : g.micro_batch_size > 0     ? "grpo.micro_batch_size"
                    : g.max_staleness > 0        ? "grpo.max_staleness"
                                                 : nullptr;
  if (key != nullptr) {
    fail("parallel.ep = ", c.parallel.ep, " does not support ", key,
         " yet (the experts are sharded over the ranks): drop one of them");
  }
}

void check_schedule(const GrpoConfig& g) {
  if (g.steps < 1 || g.prompts_per_step < 1 || g.group_size < 1 || g.num_iterations < 1) {
    fail("grpo.steps, prompts_per_step, group_size and num_iterations must be >= 1");
  }
  if (g.checksum_every < 0) fail("grpo.checksum_every must be >= 0");
  if (g.dynamic_sampling_max_rounds < 1) fail("grpo.dynamic_sampling_max_rounds must be >= 1");
  if (g.minibatch_size < 0 || g.save_every < 0 || g.ref_reset_every < 0 || g.report_every < 0 ||
      g.micro_batch_size < 0) {
    fail("grpo.minibatch_size, micro_batch_size, save_every, report_every and ref_reset_every "
         "must be >= 0");
  }
  // The MTP loss is normalised by the minibatch's rows over every rank before its backward.
  if (g.micro_batch_size > 0 && g.mtp_weight > 0) {
    fail("grpo.micro_batch_size does not support grpo.mtp_weight yet: drop one of them");
  }
  if (g.eval_every < 0 || g.eval_n < 1 || g.eval_size < 1 || g.keep_checkpoints < 0) {
    fail("grpo.eval_every and keep_checkpoints must be >= 0, eval_n and eval_size >= 1");
  }
  // Each step ahead holds one more batch of rollouts and one more copy of the weights.
  if (g.max_staleness < 0 || g.max_staleness > 8) fail("grpo.max_staleness must be in [0, 8]");
}

void check_objective(const GrpoConfig& g) {
  if (g.beta < 0 || g.eps_low < 0 || g.eps_high < 0) fail("grpo.beta and eps must be >= 0");
  if (!(g.kl_reward_coef >= 0) || !std::isfinite(g.kl_reward_coef)) {
    fail("grpo.kl_reward_coef must be >= 0");
  }
  if (g.kl_reward_coef > 0 && g.kl_in_reward) {
    fail("grpo.kl_reward_coef and grpo.kl_in_reward both put a KL in the reward: use one "
         "(kl_reward_coef keeps beta's KL loss as well)");
  }
  if (!std::isfinite(g.entropy_target) || !(g.entropy_coef_lr > 0) ||
      !std::isfinite(g.entropy_coef_lr)) {
    fail("grpo.entropy_target must be finite and grpo.entropy_coef_lr > 0");
  }
  if (g.entropy_target >= 0 && g.entropy_coef < 0) {
    fail("grpo.entropy_coef must be >= 0 with an entropy_target (it is the starting coefficient)");
  }
  if (!(g.mtp_weight >= 0) || !std::isfinite(g.mtp_weight)) fail("grpo.mtp_weight must be >= 0");
  if (g.dual_clip != 0 && g.dual_clip <= 1) fail("grpo.dual_clip must be 0 (off) or > 1");
  if (g.ref_ema < 0 || g.ref_ema > 1) fail("grpo.ref_ema must be in [0, 1]");
  if ((g.policy_loss == PolicyLoss::kCispo || g.policy_loss == PolicyLoss::kGmpo) &&
      g.ratio_level != RatioLevel::kToken) {
    fail("grpo.policy_loss '", g.policy_loss == PolicyLoss::kCispo ? "cispo" : "gmpo",
         "' works on token ratios: grpo.ratio_level must be token");
  }
  if (!(g.sapo_tau_pos > 0) || !(g.sapo_tau_neg > 0)) fail("grpo.sapo_tau_pos/neg must be > 0");
  if (!(g.is_cap > 1)) fail("grpo.is_cap must be > 1");
  // A group of one has no baseline to compare with: every group-relative advantage is 0.
  if (g.group_size < 2 &&
      (g.advantage == AdvantageMode::kGrpo || g.advantage == AdvantageMode::kRloo)) {
    fail("grpo.group_size must be >= 2 for advantage '",
         g.advantage == AdvantageMode::kGrpo ? "grpo" : "rloo",
         "' (a group of 1 has no baseline: nothing would be learned); reinforce_pp works with 1");
  }
}

}  // namespace

GrpoConfig GrpoConfig::from_json(const Json& j) {
  StrictReader r(j, "grpo");
  GrpoConfig g;
  read_schedule(r, g);
  read_objective(r, g);
  g.esft = r.get<Json>("esft", Json());
  if (!g.esft.is_null()) check_esft(g.esft);
  r.finish();
  check_schedule(g);
  check_objective(g);
  return g;
}

EpisodeConfig EpisodeConfig::from_json(const Json& j) {
  StrictReader r(j, "rollout");
  EpisodeConfig e;
  e.tools = tools::ToolSet::from_json(r.get<Json>("tools", Json()), "rollout.tools");
  const Json stop = r.get<Json>("tool_stop", Json("python"));
  e.format = rollout::CallFormat::from_json(stop, "rollout.tool_stop");
  e.max_turns = r.get<int>("max_turns", e.max_turns);
  e.max_turn_tokens = r.get<int>("max_turn_tokens", e.max_turn_tokens);
  e.max_output_bytes = r.get<int64_t>("max_output_bytes", e.max_output_bytes);
  e.tool_threads = r.get<int>("tool_threads", e.tool_threads);
  r.finish();
  if (e.max_turns < 0) fail("rollout.max_turns must be >= 0");
  if (e.max_turn_tokens < 0) fail("rollout.max_turn_tokens must be >= 0");
  if (e.max_output_bytes < 1) fail("rollout.max_output_bytes must be >= 1");
  if (e.tool_threads < 1 || e.tool_threads > 256) fail("rollout.tool_threads must be in [1, 256]");
  if (!e.tools.empty() && e.format.syntax != rollout::CallSyntax::kToolCall) {
    bool known = false;
    for (const rollout::Tool* t : e.tools.tools()) known |= t->name() == e.format.tool;
    if (!known) {
      fail("rollout.tool_stop sends every call to tool \"", e.format.tool,
           "\", which rollout.tools does not list");
    }
  }
  return e;
}

rollout::EpisodeOptions EpisodeConfig::engine_options() const {
  rollout::EpisodeOptions o;
  o.tools = tools.tools();
  o.format = format;
  o.max_turns = max_turns;
  o.max_turn_tokens = max_turn_tokens;
  o.max_output_bytes = max_output_bytes;
  o.tool_threads = tool_threads;
  return o;
}

TrainConfig TrainConfig::from_json(const Json& j) {
  StrictReader r(j, "config");
  TrainConfig c;
  c.model = r.require<std::string>("model");
  c.reference = r.get<std::string>("reference", "");
  c.output_dir = r.require<std::string>("output_dir");
  if (c.output_dir.empty()) fail("output_dir must not be empty");
  c.rollouts = r.get<std::string>("rollouts", "");
  c.seed = r.get<uint64_t>("seed", 0);
  c.precision = matmul_precision_from(r.get<std::string>("precision", "fp32"), "precision");
  c.data = r.child("data");
  c.rewards = r.get<Json>("rewards", Json::array({Json{{"name", "math"}, {"weight", 1.0}},
                                                   Json{{"name", "format"}, {"weight", 1.0}}}));
  c.accuracy_reward = r.get<std::string>("accuracy_reward", "");
  Json sampling = r.child("sampling");
  c.episodes = EpisodeConfig::from_json(r.child("rollout"));
  c.grpo = GrpoConfig::from_json(r.child("grpo"));
  Json opt = r.child("optimizer");
  Json sched = r.child("schedule");
  c.lora = policy::LoraConfig::from_json(r.child("lora"));
  if (c.lora.base_model.empty()) c.lora.base_model = c.model;
  c.parallel = train::ParallelConfig::from_json(r.child("parallel"));
  r.finish();
  if (c.lora.on() && !c.grpo.esft.is_null()) {
    fail("lora and grpo.esft both choose what trains: use one");
  }
  // R1-Zero defaults where the config is silent: temperature 1, lr 3e-6.
  c.sampling = rollout::SamplingParams::from_json(sampling);
  c.optimizer = policy::OptimizerConfig::from_json(opt);
  if (!sched.contains("lr")) sched["lr"] = 3e-6;
  if (!sched.contains("total_steps")) sched["total_steps"] = c.grpo.steps;
  c.schedule = policy::LrSchedule::from_json(sched);
  StrictReader d(c.data, "data");
  if (!d.has("train") && c.rollouts.empty()) fail("data.train is required (a JSONL path or synthetic:addition)");
  for (const std::string& k : datasets::data_keys()) d.get<Json>(k, Json());
  d.finish();
  if (c.grpo.eval_every > 0 && !c.data.contains("eval")) {
    fail("grpo.eval_every needs data.eval (a JSONL path or synthetic:<task>, with data.split)");
  }
  if (!c.rewards.is_array() || c.rewards.empty()) fail("rewards must be a non-empty array");
  if (c.grpo.speculative && !c.episodes.tools.empty()) {
    fail("grpo.speculative does not run tool-using episodes (rollout.tools): drop one of them");
  }
  if (c.parallel.expert_parallel()) check_expert_parallel(c);
  if (c.grpo.max_staleness > 0 && !c.rollouts.empty()) {
    fail("grpo.max_staleness samples ahead of training; with rollouts (a rollout file) nothing "
         "is sampled: drop one of them");
  }
  // accuracy_reward must name one of the rewards (by label, else name), checked here so that
  // --dry-run and the run agree.
  if (!c.accuracy_reward.empty()) {
    std::vector<std::string> labels;
    for (const Json& e : c.rewards) {
      if (!e.is_object()) continue;
      if (e.contains("label") && e["label"].is_string()) {
        labels.push_back(e["label"].get<std::string>());
      } else if (e.contains("name") && e["name"].is_string()) {
        labels.push_back(e["name"].get<std::string>());
      }
    }
    if (std::find(labels.begin(), labels.end(), c.accuracy_reward) == labels.end()) {
      fail("accuracy_reward '", c.accuracy_reward, "' is not one of the configured rewards",
           did_you_mean(c.accuracy_reward, labels));
    }
  }
  return c;
}

}  // namespace aha::grpo
