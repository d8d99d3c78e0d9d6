// The checkpoint directories of a training run, the same for GRPO, pretraining and
// distillation. A checkpoint holds the weights in the HF layout (written atomically, with the
// tokenizer files; with LoRA the merged W + s B A, and the adapters alone in adapter/ in the
// PEFT layout, which a resume reads onto the run's base), optimizer.safetensors, any files of the trainer's own, and
// trainer_state.json (step, data cursor, non-finite streak and the trainer's own keys), written
// last: a directory without it is incomplete and never resumed from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/datasets/dataset.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "aha/runlog/run_db.h"
#include "aha/train/update_step.h"

namespace aha::train {

// What a run trains and saves; the checkpointer refers to it, the trainer owns it.
struct TrainedState {
  policy::Model<float>& model;
  policy::Optimizer<float>& opt;
  datasets::DataCursor& cursor;
  UpdateStep& update;
};

// The model a run trains: the checkpoint in `dir`, with LoRA adapters after it when lora.on()
// (PEFT's init from `seed`, or the PEFT directory lora.adapter) and the base frozen; ep: the
// expert sharding it is built with (expert_parallel_for; sharded: only this rank's experts load).
std::unique_ptr<policy::Model<float>> load_policy(const std::string& dir,
                                                  const policy::LoraConfig& lora, uint64_t seed,
                                                  const policy::ExpertParallel& ep);

// Not thread-safe; one per run directory.
class Checkpointer {
 public:
  struct Entry {
    int64_t step = 0;
    std::filesystem::path dir;
  };
  // Files a trainer adds to a checkpoint directory before trainer_state.json.
  using ExtraFiles = std::function<void(const std::filesystem::path& dir)>;

  // tokenizer_dir: whose tokenizer files each saved model copies. db: run.db, where saves and
  // removals are recorded (rank 0); nullptr on other ranks, where nothing is written.
  Checkpointer(std::string output_dir, std::string tokenizer_dir, runlog::RunDb* db,
               TrainedState state);

  // The complete checkpoint-N directories of a run directory, newest first.
  static std::vector<Entry> complete(const std::filesystem::path& output_dir);
  // The newest complete checkpoint-N of a run directory, or "" when there is none.
  static std::string latest(const std::filesystem::path& output_dir);
  static bool is_complete(const std::filesystem::path& dir);

  // Writes <output_dir>/<name> ("checkpoint-<step>" when empty): the weights, the optimizer,
  // extra(dir), then trainer_state.json (`own` plus the step, cursor and streak); recorded in
  // run.db. Returns the directory ("" on ranks without run.db). Every rank calls it: under
  // expert parallelism each rank writes its own experts' shard and moments (sharded model) or
  // the other ranks' expert moments are gathered to rank 0 (every expert held).
  std::string save(const std::string& name, int64_t step, Json own, const ExtraFiles& extra);
  // Only the weights (and extra files) in <output_dir>/<name>, e.g. the final model. Every
  // rank calls it when the experts are sharded.
  std::string save_weights(const std::string& name, const ExtraFiles& extra) const;
  // A resume from dir ("" when there is none: start afresh): restores weights, optimizer,
  // cursor and streak, sets step, rewinds run.db to it (to 0 without a checkpoint) and returns
  // trainer_state.json for the trainer's own keys (null without a checkpoint).
  Json resume(const std::string& dir, int64_t& step);
  // Restores the weights and optimizer moments saved in dir; returns its trainer_state.json.
  static Json load(const std::string& dir, policy::Model<float>& model,
                   policy::Optimizer<float>& opt);
  // Removes all but the newest `keep` complete checkpoints and the one of step `also_keep`,
  // with their run.db rows. keep <= 0 keeps all.
  void prune(int keep, int64_t also_keep) const;

 private:
  // A sharded model's checkpoint: each rank's shard, the index, and (optimizer) the moments.
  std::string save_sharded(const std::string& name, bool optimizer, const ExtraFiles& extra) const;
  std::filesystem::path output_dir_;
  std::string tokenizer_dir_;
  runlog::RunDb* db_;
  TrainedState state_;
};

}  // namespace aha::train
