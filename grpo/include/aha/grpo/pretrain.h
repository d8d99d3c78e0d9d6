// Next-token pretraining of a (small) model on text: how the R1-Zero demo gets its base
// checkpoint. Same run.db logging, checkpoints and resume as GRPO.
#pragma once

#include <functional>
#include <string>

#include "aha/core/gemm_bf16.h"
#include "aha/core/config.h"
#include "aha/policy/attention.h"
#include "aha/policy/optimizer.h"
#include "aha/train/expert_parallel.h"

namespace aha::grpo {

struct PretrainConfig {
  std::string model;       // initial checkpoint (with tokenizer.json)
  std::string output_dir;
  uint64_t seed = 0;
  // {"train": path.jsonl ("text" field) | "synthetic:addition", "size": N, "digits": [1, 2],
  //  "p_sloppy", "p_wrong_answer", "p_no_format"}
  Json data;
  int steps = 1000;
  int64_t batch_tokens = 4096;  // tokens per optimizer step (whole documents, packed)
  int save_every = 0;
  int threads = 0;
  MatmulPrecision precision = MatmulPrecision::fp32;  // "precision": fp32 | bf16
  int max_nan_skips = 3;  // more non-finite updates in a row than this end the run
  // DeepSeek-V3's multi-token prediction loss weight (lambda; 0: off). Needs a model with
  // num_nextn_predict_layers = 1; its gradient reaches the trunk as in V3's pretraining.
  double mtp_weight = 0.0;
  // Only the MTP module learns: its loss reaches neither the trunk nor the main head, and the
  // main loss is logged but not trained on (DeepSeek-V3 §2.2's module on a frozen model).
  bool mtp_detached = false;
  // DeepSeek Sparse Attention (deepseek_v32): the weight of the indexer's KL loss to the main
  // attention (0: off), over every causal key with only the indexer learning ("dense": V3.2's
  // warm-up) or over each query's selection beside the LM loss ("sparse"). The indexer's input
  // is detached either way.
  double indexer_loss_weight = 0.0;
  policy::IndexerSupport indexer_stage = policy::IndexerSupport::kSparse;
  train::ParallelConfig parallel;  // "parallel": {"ep": N}: experts sharded over N ranks
  policy::OptimizerConfig optimizer;
  policy::LrSchedule schedule;
  static PretrainConfig from_json(const Json& j);  // strict
};

struct PretrainReport {
  int64_t step = 0, total_steps = 0;
  Json metrics;
};

// Runs (or resumes) pretraining; the final checkpoint is <output_dir>/final. max_steps > 0 (or
// Ctrl-C) stops early: the state is saved in <output_dir>/last and the run marked paused.
// More than max_nan_skips non-finite updates in a row end the run with an error (a diverged
// model is never written as final).
void pretrain(const PretrainConfig& config, const Json& raw, bool resume,
              const std::function<void(const PretrainReport&)>& on_step, int64_t max_steps);

}  // namespace aha::grpo
