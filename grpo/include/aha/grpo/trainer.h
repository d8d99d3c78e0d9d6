// The GRPO trainer: prompts -> G completions each (rollout engine) -> rewards -> group-relative
// advantages -> reference logprobs -> num_iterations passes of minibatch updates -> run.db and
// periodic checkpoints with exact training state for a bit-for-bit resume.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "aha/core/config.h"
#include "aha/core/gemm_bf16.h"
#include "aha/datasets/dataset.h"
#include "aha/grpo/advantages.h"
#include "aha/grpo/loss.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "aha/rewards/reward.h"
#include "aha/rollout/episode.h"
#include "aha/rollout/sampling.h"
#include "aha/tools/tools.h"
#include "aha/train/expert_parallel.h"

namespace aha::grpo {

enum class IsCorrection { kNone, kTis, kMis };

// The string options of the config are parsed into enums here, once, at load.
struct GrpoConfig {
  int steps = 100;
  int prompts_per_step = 8;
  int group_size = 16;          // G (R1-Zero: 16)
  int num_iterations = 1;       // mu: passes over each step's rollouts
  int minibatch_size = 0;       // sequences per optimizer step (0: the whole step batch)
  // Sequences per forward and backward inside a minibatch, their gradients summed before the
  // optimizer step (gradient accumulation); 0: the whole minibatch in one pass.
  int micro_batch_size = 0;
  double beta = 0.001;          // KL weight (0: no reference model)
  KlEstimator kl_estimator = KlEstimator::kK3;
  bool kl_in_reward = false;    // subtract beta * sum k1 from the reward instead of the loss
  double eps_low = 0.2, eps_high = 0.2, dual_clip = 0.0;
  RatioLevel ratio_level = RatioLevel::kToken;
  LossAgg loss_agg = LossAgg::kSeqMeanTokenMean;
  PolicyLoss policy_loss = PolicyLoss::kClip;  // clip | cispo | sapo | gmpo (loss.h)
  double entropy_coef = 0.0;    // entropy bonus (loss -= coef * H of each token's distribution)
  // Weight of the multi-token-prediction loss on the completions' policy tokens (0: off; the
  // policy needs an MTP module).
  double mtp_weight = 0.0;
  // Adaptive entropy bonus: when entropy_target >= 0, after every step
  // coef = max(0, coef + entropy_coef_lr * (entropy_target - mean entropy)), starting at
  // entropy_coef (the coefficient is saved with checkpoints).
  double entropy_target = -1.0;
  double entropy_coef_lr = 0.01;
  // KL in the reward with its own weight, beside beta's KL loss (0: off; kl_in_reward moves
  // beta itself into the reward instead).
  double kl_reward_coef = 0.0;
  // Sampler/trainer mismatch correction: none | tis (truncated IS weight min(rho, cap)) | mis
  // (masked IS: tokens or sequences with rho outside [1/cap, cap] leave the loss).
  IsCorrection is_correction = IsCorrection::kNone;
  RatioLevel is_level = RatioLevel::kToken;  // token | sequence (rho of the whole completion)
  double is_cap = 2.0;
  int eval_every = 0;           // evaluate on data.eval every N steps and at the end (0: never)
  int eval_n = 1;               // samples per evaluation problem (pass@eval_n is logged too)
  int eval_size = 200;          // evaluation problems (the first of data.eval)
  int keep_checkpoints = 0;     // keep the newest N checkpoints and the best by eval (0: all)
  double sapo_tau_pos = 1.0, sapo_tau_neg = 1.05;
  AdvantageMode advantage = AdvantageMode::kGrpo;
  RewardScale scale_rewards = RewardScale::kGroup;
  int ref_reset_every = 0;      // copy the policy into the reference every N steps (0: never)
  double ref_ema = 0.0;         // > 0: ref = (1 - ema) * ref + ema * policy after each step
  bool keep_routing = false;    // replay the experts chosen at sampling
  bool keep_sampling_mask = false;  // renormalise training logprobs over the sampled top-k/p set
  double offpolicy_delta = 0.0; // DeepSeek-V3.2 off-policy sequence masking (0: off)
  bool dynamic_sampling = false;  // DAPO: drop groups whose rewards are all equal, refill
  int dynamic_sampling_max_rounds = 4;  // sampling rounds per step before going on short
  bool mask_truncated = false;    // exclude completions that hit max_new_tokens from the loss
  double bias_update_gamma = 0.0; // aux-loss-free balancing step (0: off)
  // weight of the MoE balance losses: the sequence-wise one (x aux_loss_alpha) and the
  // device-level and communication ones (x device_balance_alpha, comm_balance_alpha)
  double aux_loss_weight = 0.0;
  int max_nan_skips = 3;          // stop after this many non-finite updates in a row
  int save_every = 0;             // checkpoint every N steps (0: only at the end)
  int report_every = 0;           // write <output_dir>/report.html every N steps (0: off)
  int max_batch = 64;             // live sequences in the rollout engine
  // Asynchronous rollouts: > 0 samples step j's groups on a second thread while earlier steps
  // train, with the weights after step max(start, j - 1 - max_staleness) (0: synchronous).
  int max_staleness = 0;
  // Speculative decoding of the rollouts with the policy's MTP module as the draft (exact: the
  // samples are the policy's). Pair with mtp_weight to keep the draft in step with the policy.
  bool speculative = false;
  bool log_tokens = true;         // token ids and logprobs in run.db (export-rollouts needs them)
  int threads = 0;
  int checksum_every = 10;        // MPI: compare a weight checksum across ranks every N steps
  // ESFT: {"share": 0.9, "include_shared": true, "metric": "gate", "prompts": 64} trains only
  // the routed experts that carry `share` of the routing mass on the task prompts (null: off).
  Json esft;
  static GrpoConfig from_json(const Json& j);
};

// `rollout`: multi-turn, tool-using episodes (docs/agentic.md). No tools: single-turn rollouts.
struct EpisodeConfig {
  tools::ToolSet tools;                  // rollout.tools
  rollout::CallFormat format;            // rollout.tool_stop: "python" | "tool_call" | {...}
  int max_turns = 4;                     // tool calls per episode
  int max_turn_tokens = 0;               // policy tokens per turn (0: sampling.max_new_tokens)
  int64_t max_output_bytes = 4096;       // longer tool output ends the episode (tool_error)
  int tool_threads = 2;
  static EpisodeConfig from_json(const Json& j);
  // The engine's options (tokenize filled by the caller).
  rollout::EpisodeOptions engine_options() const;
};

struct TrainConfig {
  std::string model;             // initial policy checkpoint
  std::string reference;         // reference checkpoint ("": the initial policy)
  std::string output_dir;
  std::string rollouts;          // a rollout file to learn from instead of sampling ("": sample)
  uint64_t seed = 0;
  // "precision": the matmuls of rollouts, training and scoring (fp32, or bf16 with fp32
  // accumulation and fp32 master weights).
  MatmulPrecision precision = MatmulPrecision::fp32;
  // data: {"train": path | "synthetic:arithmetic", "format": {...}, "template": "r1_zero" | text,
  //        "limit": N, "digits": [min, max]}
  Json data;
  Json rewards;                  // [{"name", "weight", "params"}...]
  std::string accuracy_reward;   // label whose score > 0.5 counts as correct ("": first reward)
  rollout::SamplingParams sampling;
  EpisodeConfig episodes;        // "rollout"
  GrpoConfig grpo;
  policy::OptimizerConfig optimizer;
  policy::LrSchedule schedule;
  policy::LoraConfig lora;       // "lora": adapters on a frozen base (rank 0: full fine-tuning)
  train::ParallelConfig parallel;  // "parallel": {"ep": N}: routed experts sharded over N ranks
  // Parses strictly: unknown keys anywhere are errors. Defaults are R1-Zero's.
  static TrainConfig from_json(const Json& j);
};

// Checks everything a run needs except the weights: the model's config.json, the tokenizer,
// the data (loads it, renders and tokenizes the first prompts), the rewards and the context
// length. Returns a summary; throws aha::Error on the first problem.
Json dry_run(const TrainConfig& config);

struct StepReport {
  int64_t step = 0, total_steps = 0;
  Json metrics;
};

class Trainer {
 public:
  // resume: continue from the latest checkpoint in output_dir. registry: where reward names are
  // looked up (nullptr: the built-in rewards).
  Trainer(const TrainConfig& config, const Json& raw_config, bool resume,
          const rewards::RewardRegistry* registry = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs until grpo.steps (or until max_steps more steps when > 0).
  void run(const std::function<void(const StepReport&)>& on_step = {}, int64_t max_steps = 0);
  int64_t step() const;
  std::string run_db_path() const;
  const policy::Model<float>& policy() const;  // the model being trained (tests)

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace aha::grpo
