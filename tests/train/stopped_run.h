// Shared by the trainers' tests: what a run stopped by repeated non-finite updates leaves behind.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "aha/core/error.h"
#include "aha/runlog/run_db.h"

namespace aha::train::testing {

// run() must throw after max_nan_skips skipped updates and one more non-finite one; the run in
// out is then marked failed with one nan_skip event per skip, and has no final model.
inline void expect_stopped_by_nan(const std::function<void()>& run, const std::string& out,
                                  int max_nan_skips) {
  try {
    run();
    ADD_FAILURE() << "a diverged run must stop";
  } catch (const Error& e) {
    const std::string want = std::to_string(max_nan_skips + 1) + " non-finite updates in a row";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  EXPECT_EQ(db->query("SELECT status FROM runs")[0]["status"], "failed");
  EXPECT_EQ(db->query("SELECT COUNT(*) AS n FROM events WHERE kind = 'nan_skip'")[0]["n"],
            max_nan_skips);
  EXPECT_FALSE(std::filesystem::exists(out + "/final"));
}

}  // namespace aha::train::testing
