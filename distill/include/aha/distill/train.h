// `aha distill train`: a student trained on an SFT JSONL from `aha distill sample`, by SFT (loss on
// completion tokens only, sequences packed), optionally plus logit distillation from the teacher
// (forward KL on its top-k logprobs, stored in the JSONL or computed online), or on-policy (the
// student samples, the teacher scores, reverse KL). ESFT restricts training of an MoE student to
// its task-relevant experts. Same run.db logging, checkpoints and resume as `aha train`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "aha/core/config.h"
#include "aha/policy/optimizer.h"
#include "aha/rollout/sampling.h"
#include "aha/train/expert_parallel.h"

namespace aha::distill {

struct KdConfig {
  double weight = 0.0;                // weight of the KL term (0: SFT only)
  double sft_weight = 1.0;            // weight of the completion-token NLL
  std::string source = "stored";      // stored (the JSONL's topk) | online (teacher forward)
  std::string direction = "forward";  // forward | reverse
  int top_k = 20;                     // online: teacher ids per position
  bool tail = true;                   // the rest-of-vocabulary bucket
  bool on_policy = false;             // student samples prompts' completions, teacher scores them
  int prompts_per_step = 8;           // on-policy
  rollout::SamplingParams sampling;   // on-policy
  static KdConfig from_json(const Json& j);
};

struct EsftConfig {
  bool enabled = false;
  double share = 0.9;  // routing mass the trained experts cover, per layer
  bool include_shared = true;
  std::string metric = "gate";  // gate | token
  int score_batches = 8;        // batches of training data used to score the experts
  static EsftConfig from_json(const Json& j);
};

struct DistillConfig {
  std::string student;    // HF checkpoint to start from, or ""
  Json student_config;    // else: "llama" | "qwen2" | a config.json path | an object
  std::string tokenizer;  // tokenizer directory for a new student (default: teacher)
  std::string teacher;    // needed for online and on-policy KD
  std::string output_dir;
  uint64_t seed = 0;
  Json data;  // {"train": sft.jsonl, "limit": N}
  int steps = 100;
  int64_t batch_tokens = 2048;
  int save_every = 0;
  int threads = 0;
  int max_nan_skips = 3;  // more non-finite updates in a row than this end the run
  double init_std = 0.02;
  // DeepSeek-V3's MTP loss on the completion tokens (lambda; 0: off): the token after next of
  // every completion token, through the student's MTP module (num_nextn_predict_layers: 1).
  double mtp_weight = 0.0;
  KdConfig kd;
  EsftConfig esft;
  policy::OptimizerConfig optimizer;
  policy::LrSchedule schedule;
  policy::LoraConfig lora;  // "lora": adapters on the student, its base frozen (as aha train)
  train::ParallelConfig parallel;  // "parallel": {"ep": N}: an MoE student's experts over N ranks
  static DistillConfig from_json(const Json& j);  // strict
};

struct DistillReport {
  int64_t step = 0, total_steps = 0;
  Json metrics;
};

// Runs (or resumes from the latest <output_dir>/checkpoint-N) training; the student is saved in
// <output_dir>/final. max_steps > 0 stops after that many steps this call (checkpointed).
// Returns the final metrics line.
Json run_distill(const DistillConfig& cfg, const Json& raw, bool resume, int64_t max_steps = 0,
                 const std::function<void(const DistillReport&)>& on_step = {});

// The config.json of the built-in dense students ("llama", "qwen2") for a vocabulary.
Json student_preset(const std::string& name, int vocab_size);

}  // namespace aha::distill
