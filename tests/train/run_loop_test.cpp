// The shared step loop and run directory: which steps run and save, a resume that needs
// run.db, and a run that throws marked failed.
#include "aha/train/run_loop.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "aha/core/error.h"

namespace aha::train {
namespace {

namespace fs = std::filesystem;

// The steps after which a loop from `from` saves.
std::vector<int64_t> saves(int64_t steps, int save_every, int64_t max_steps, int64_t from) {
  StepLoop loop(steps, save_every, max_steps, from);
  std::vector<int64_t> saved;
  for (int64_t step = from; loop.more(step);) {
    ++step;
    if (loop.save_after(step)) saved.push_back(step);
  }
  return saved;
}

TEST(StepLoop, SavesEveryNStepsAndAtTheStop) {
  EXPECT_EQ(saves(7, 3, 0, 0), (std::vector<int64_t>{3, 6, 7}));
  EXPECT_EQ(saves(7, 0, 0, 0), (std::vector<int64_t>{7}));
  EXPECT_EQ(saves(7, 3, 2, 0), (std::vector<int64_t>{2}));  // --max-steps 2
  EXPECT_EQ(saves(7, 3, 2, 5), (std::vector<int64_t>{6, 7}));
  EXPECT_TRUE(saves(7, 3, 0, 7).empty());  // nothing left to do
}

TEST(RunDir, AResumeNeedsRunDbAndAFailureIsRecorded) {
  const fs::path dir =
      fs::temp_directory_path() / ("aha_train_rundir_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  EXPECT_THROW(open_run_db(dir.string(), "test", Json::object(), "m", true), Error);
  auto db = open_run_db(dir.string(), "test", Json::object(), "m", false);
  ASSERT_NE(db, nullptr);
  int64_t step = 4;
  EXPECT_THROW(fail_run_on_error(db.get(), step, [] { fail("broken"); }), Error);
  EXPECT_EQ(db->query("SELECT status FROM runs")[0]["status"], "failed");
  EXPECT_EQ(db->query("SELECT step, message FROM events WHERE kind = 'failed'")[0]["step"], 4);
  db.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha::train
