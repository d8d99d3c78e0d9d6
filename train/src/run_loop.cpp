// Opening a run directory, the step loop's save points and Ctrl-C, and failed runs.
#include "aha/train/run_loop.h"

#include <algorithm>
#include <exception>
#include <filesystem>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/interrupt.h"
#include "aha/policy/checkpoint.h"

namespace aha::train {

namespace fs = std::filesystem;

std::unique_ptr<runlog::RunDb> open_run_db(const std::string& output_dir, const std::string& kind,
                                           const Json& config, const std::string& model,
                                           bool resume) {
  fs::create_directories(output_dir);
  const std::string path = (fs::path(output_dir) / "run.db").string();
  if (resume && !fs::exists(path)) fail("cannot resume: no run.db in ", output_dir);
  if (dist::rank() != 0) return nullptr;
  auto db = std::make_unique<runlog::RunDb>(path, kind, config, model, resume);
  policy::sweep_partial_writes(output_dir);
  return db;
}

StepLoop::StepLoop(int64_t steps, int save_every, int64_t max_steps, int64_t from_step)
    : stop_at_(max_steps > 0 ? std::min(steps, from_step + max_steps) : steps),
      save_every_(save_every) {}

bool StepLoop::save_after(int64_t step) {
  // Ctrl-C: this step is the last, saved as if max_steps had ended here.
  if (stop_requested_all()) stop_at_ = step;
  return step == stop_at_ || (save_every_ > 0 && step % save_every_ == 0);
}

void fail_run_on_error(runlog::RunDb* db, const int64_t& step, const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    if (db != nullptr) {
      db->event(step, "error", "failed", e.what());
      db->finish("failed");
    }
    throw;
  }
}

}  // namespace aha::train
