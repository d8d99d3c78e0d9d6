// The trainer's private state, shared by trainer.cpp (setup, checkpoints) and
// trainer_step.cpp (one GRPO step).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aha/core/gemm_bf16.h"
#include "aha/core/threading.h"
#include "aha/datasets/dataset.h"
#include "aha/datasets/prompt_template.h"
#include "aha/grpo/rollouts.h"
#include "aha/grpo/trainer.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/rewards/reward.h"
#include "aha/runlog/run_db.h"
#include "aha/train/checkpointer.h"
#include "aha/train/update_step.h"
#include "rollout_queue.h"

namespace aha::grpo {

struct Trainer::State {
  TrainConfig cfg;
  Json raw;
  std::unique_ptr<ThreadLimit> threads;
  std::unique_ptr<MatmulPrecisionScope> precision;
  std::unique_ptr<policy::Model<float>> policy, ref;
  // LoRA with a fixed reference: the reference is the policy with its adapters off (ref null).
  bool ref_is_base = false;
  bool has_ref() const { return ref || ref_is_base; }
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::vector<datasets::Example> data;
  std::unique_ptr<datasets::DataCursor> cursor;
  std::unique_ptr<datasets::PromptTemplate> templ;
  rewards::RewardSet rewards;
  std::string acc_label;
  std::unique_ptr<policy::Optimizer<float>> opt;
  std::unique_ptr<runlog::RunDb> db;
  std::unique_ptr<train::UpdateStep> update;
  std::unique_ptr<train::Checkpointer> checkpoints;
  int64_t step = 0;  // completed steps
  int flat_streak = 0;  // steps in a row where every group's rewards were equal
  std::vector<datasets::Example> eval_data;  // data.eval (grpo.eval_every > 0)
  double best_eval = -1;                     // best eval pass@1 so far, and its step
  int64_t best_step = -1;
  double entropy_coef = 0;    // the entropy bonus's weight now (adaptive with entropy_target)
  bool ref_changed = false;  // the reference drifted from its checkpoint (reset or EMA)

  std::vector<Rollout> file_rollouts;  // --rollouts: what every step learns from
  // Asynchronous rollouts (grpo.max_staleness > 0). Declared last: it is destroyed first, and
  // its thread reads the members above.
  std::unique_ptr<RolloutQueue> queue;

  // One GRPO step (trainer_step.cpp); returns the step's metrics.
  Json run_step();
  // Samples and scores the groups of step `at` (1-based) with `model`, whose weights have seen
  // `version` updates (trainer_sample.cpp); dynamic sampling refills here.
  SampledBatch sample_rollouts(const policy::Model<float>& model, int64_t at,
                               int64_t version) const;
  // This step's groups: from the rollout file, the rollout queue, or sampled now.
  std::vector<Rollout> step_rollouts(Json& m);
  // grpo.max_staleness > 0: starts the rollout queue with what the checkpoint in dir had
  // sampled ahead ("" or none: nothing).
  void start_queue(const std::string& dir);
  // Logprobs, advantages and the updates of one step (trainer_update.cpp).
  struct PassOptions {
    double temperature = 1.0;
    bool replay_routing = false, keep_mask = false;
    // One update from the weights that sampled (old_in_update()): the learning rollouts'
    // pi_old is that update's own forward, not a forward of its own.
    bool old_in_update = false;
  };
  // The minibatch updates' activations, kept from step to step: their gigabytes (every token of
  // a minibatch, every layer) freed at a step's end went back to the system and came back as
  // page faults and kernel zeroing in the next step's forward.
  policy::Activations<float> update_acts;
  // What a step's minibatch updates add up.
  struct StepTotals {
    LossMetrics sum;
    double grad_norm_sum = 0, entropy[2] = {0, 0};
    int64_t updates = 0, skipped = 0;
    std::vector<std::vector<int64_t>> loads;
    double mtp[2] = {0, 0};  // grpo.mtp_weight: summed -log p(token after next), rows
    // The first pass's device-level and communication balance losses, one pair per global
    // minibatch (0 where this rank had no sequence); config.json device/comm_balance_alpha.
    std::vector<double> balance;
    double mismatch[2] = {0, 0};  // |sampler - trainer| logprob summed over tokens, tokens
  };
  // grpo.mtp_weight (trainer_mtp.cpp): which of the packed minibatch's n main rows the MTP loss
  // covers (count: how many), and its term: parameter gradients into the policy's, the
  // returned gradient of acts.h_final for the trunk; nll receives this rank's summed loss.
  std::vector<uint8_t> mtp_rows(const std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                                const std::vector<int64_t>& offs, int64_t n,
                                double& count) const;
  std::vector<float> mtp_term(const policy::Activations<float>& acts,
                              const std::vector<uint8_t>& keep, double global_rows, double& nll);
  void learn(std::vector<Rollout>& rs, Json& m);
  // One global minibatch: this rank's part idx (possibly empty) forward, loss and backward,
  // gradients summed over ranks, then the optimizer step or a non-finite skip.
  void update_minibatch(std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                        const std::vector<std::vector<double>>& adv, int iteration,
                        const LossConfig& lc, const PassOptions& po, double lr, StepTotals& t);
  // One forward's loss terms and gradients on this rank (a minibatch, or one micro-batch).
  struct Minibatch {
    bool token_weighted = false;  // the loss aggregates over tokens (token-mean, BNPO)
    std::vector<std::vector<float>> lp;
    std::vector<int64_t> offs;
    std::vector<std::vector<double>> dlogp, dentropy;
    LossMetrics lm;
    std::vector<uint8_t> mtp_keep;
    double mtp_count = 0;
    // This rank's part of the aggregation: its loss tokens or live sequences.
    double own(size_t seqs) const {
      return token_weighted ? double(lm.tokens) : double(int64_t(seqs) - lm.masked_seqs);
    }
  };
  struct MinibatchSums;  // trainer_minibatch.cpp
  // The seed of an update's LoRA dropout masks (lora.dropout), the same on a resume.
  uint64_t dropout_seed(int iteration, const StepTotals& t, uint64_t part) const;
  // grpo.micro_batch_size: the minibatch's rows in parts of that many sequences, each forward
  // and backward in turn, the gradients summed; sums receives the loss metrics, and the
  // returned factor is what the summed gradients still need (1 / the global aggregation, of
  // tokens when token_weighted, else of live sequences).
  double update_micro_batches(std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                              const std::vector<std::vector<double>>& adv, int iteration,
                              const LossConfig& lc, const PassOptions& po, bool token_weighted,
                              StepTotals& t, MinibatchSums& sums);
  void minibatch_forward(std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                         const std::vector<std::vector<double>>& adv, int iteration,
                         const LossConfig& lc, const PassOptions& po, StepTotals& t,
                         Minibatch& mb);
  // f: this rank's share of the aggregation (its own / the global total); ready: the gradient
  // sums' start (Model::backward), on the pass that completes the gradients.
  void minibatch_backward(std::vector<Rollout>& rs, const std::vector<size_t>& idx,
                          const LossConfig& lc, double f, double mtp_global, StepTotals& t,
                          Minibatch& mb, const policy::Model<float>::GradsReady* ready);
  void fill_logprobs(std::vector<Rollout>& rs, const PassOptions& po, double mismatch[2],
                     Json& m);
  bool old_in_update(int64_t learning) const;  // see PassOptions::old_in_update
  // TIS/MIS weights of each rollout's tokens (grpo.is_correction), metrics is/*.
  void importance_weights(std::vector<Rollout>& rs, const PassOptions& po, Json& m);
  bool warned_no_sampler_logprobs = false;
  std::vector<std::vector<double>> advantages(const std::vector<Rollout>& rs) const;
  LossConfig loss_config() const;
  void save_checkpoint();
  // run.db belongs to rank 0: events of other ranks go to their log only.
  void log_event(int64_t at, const std::string& level, const std::string& kind, const std::string& msg);
  void load_models();
  void load_data();
  void setup_esft(bool resume);
  void check_ranks_agree();
  void warn_if_nothing_to_learn(double frac_flat);
  void log_start(bool resume);
  // Evaluation during training (trainer_eval.cpp).
  void run_eval(Json& m);
  // Resume: the GRPO keys of the checkpoint in dir (null: a fresh start).
  void restore(const Json& state, const std::string& dir);
};

// Adds one minibatch's expert loads [moe layer][expert] into a step's total.
void accumulate_loads(std::vector<std::vector<int64_t>>& into, std::vector<std::vector<int64_t>> l);

}  // namespace aha::grpo
