// The tail of every optimizer update, the same for GRPO, pretraining and distillation:
// gradients summed over ranks while backward runs, the ESFT mask, global-norm clipping and the
// optimizer step; an update whose loss or gradient is not finite is skipped, and more than
// max_nan_skips skips in a row end the run.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "aha/core/dist.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "aha/runlog/run_db.h"
#include "aha/train/expert_parallel.h"

namespace aha::train {

struct UpdateResult {
  double grad_norm = 0;  // before clipping (NaN/Inf when the gradient was not finite)
  bool skipped = false;  // the loss or the gradient was not finite: no optimizer step
};

// One per trainer, kept across steps (it counts the skips in a row). Not thread-safe.
// Each update: begin(); forward and loss; model.backward(..., ready()) or, on a rank without
// data, no_backward(); then apply() on every rank.
class UpdateStep {
 public:
  // db: where skips are logged (rank 0); nullptr on other ranks, which log to stderr.
  UpdateStep(policy::Model<float>& model, policy::Optimizer<float>& opt, double max_grad_norm,
             int max_nan_skips, runlog::RunDb* db);
  UpdateStep(const UpdateStep&) = delete;
  UpdateStep& operator=(const UpdateStep&) = delete;

  // ESFT: only tensors with mask[entry] != 0 learn (the optimizer is frozen on the others) and
  // count in the gradient norm.
  void set_trainable(std::vector<uint8_t> mask);

  // Zeroes the gradients: call before anything adds to them.
  void begin();
  // For Model::backward: each range of the gradient starts its sum over ranks as soon as it is
  // final. nullptr on a single rank.
  const policy::Model<float>::GradsReady* ready();
  // A rank without data joins the same sums, in the same order, with zero gradients.
  void no_backward();
  // Waits for the gradient sums (apply() waits too).
  void wait();
  // Waits for the sums, scales the gradients by grad_scale (gradients accumulated unnormalised
  // over micro-batches), masks, clips and steps with learning rate lr; or, when loss or the
  // gradient norm is not finite, skips (a nan_skip event at step `at_step`). Throws aha::Error
  // when that makes more than max_nan_skips skips in a row.
  UpdateResult apply(double loss, double lr, int64_t at_step, double grad_scale = 1.0);

  // Expert parallelism (the model's set_expert_parallel): whose experts are whose; off otherwise.
  const ExpertShards& shards() const { return shards_; }

  // Skips in a row so far; kept in trainer_state.json so that a resume counts on.
  int nan_streak() const { return nan_streak_; }
  void set_nan_streak(int n) { nan_streak_ = n; }

 private:
  void log_memory() const;  // each rank's bytes for the routed experts (MoE models)

  policy::Model<float>& model_;
  policy::Optimizer<float>& opt_;
  double max_grad_norm_;
  int max_nan_skips_;
  runlog::RunDb* db_;
  std::vector<uint8_t> trainable_;
  int nan_streak_ = 0;
  ExpertShards shards_;  // before grad_sum_'s ranges are known
  dist::AsyncSum grad_sum_;
  policy::Model<float>::GradsReady ready_;
};

}  // namespace aha::train
