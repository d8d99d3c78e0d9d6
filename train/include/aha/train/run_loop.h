// The life of a run directory, the same for GRPO, pretraining and distillation: opening run.db
// (new or resumed), the step loop with its save points and Ctrl-C, and marking a run that ends
// in an error as failed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "aha/core/config.h"
#include "aha/runlog/run_db.h"

namespace aha::train {

// Creates output_dir; on rank 0 opens its run.db (a new run of `kind`, or on a resume the
// existing one, which must be there) and sweeps the partial writes an interrupted save left.
// nullptr on other ranks: rank 0 owns run.db and the checkpoints.
std::unique_ptr<runlog::RunDb> open_run_db(const std::string& output_dir, const std::string& kind,
                                           const Json& config, const std::string& model,
                                           bool resume);

// Which steps run and after which ones the state is saved: up to `steps` in all, at most
// max_steps (> 0) more in this call, and no more after a Ctrl-C on any rank; saved every
// save_every (> 0) steps and after the last step of the call.
class StepLoop {
 public:
  StepLoop(int64_t steps, int save_every, int64_t max_steps, int64_t from_step);
  bool more(int64_t step) const { return step < stop_at_; }
  // After step `step` has run (call on every rank): whether to save now.
  bool save_after(int64_t step);

 private:
  int64_t stop_at_;
  int save_every_;
};

// Runs body; when it throws, db (rank 0; nullptr elsewhere) gets an error event "failed" with
// the message at the current `step` and the status failed, and the exception propagates.
void fail_run_on_error(runlog::RunDb* db, const int64_t& step, const std::function<void()>& body);

}  // namespace aha::train
