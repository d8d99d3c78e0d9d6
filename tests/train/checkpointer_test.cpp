// The shared checkpointer: checkpoint-N directories are found newest first, half-written ones
// (no trainer_state.json, or a temp directory of an interrupted save) are never resumed from,
// pruning keeps the newest N and the one asked for, and a resume restores weights, optimizer,
// data cursor and non-finite streak exactly.
#include "aha/train/checkpointer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "aha/core/error.h"
#include "aha/train/update_step.h"
#include "train_fixture.h"

namespace aha::train {
namespace {

using testing::TinyRun;
namespace fs = std::filesystem;

// A run's checkpointer, with its update step (for the streak it saves).
struct Saver {
  UpdateStep update;
  Checkpointer ck;
  Saver(TinyRun& run, runlog::RunDb* db)
      : update(*run.model, *run.opt, 1.0, 3, db),
        ck(run.dir.string(), "", db, TrainedState{*run.model, *run.opt, run.cursor, update}) {}
};

std::vector<int64_t> steps_of(const std::vector<Checkpointer::Entry>& found) {
  std::vector<int64_t> s;
  for (const auto& e : found) s.push_back(e.step);
  return s;
}

TEST(Checkpointer, LatestSkipsHalfWrittenDirectories) {
  TinyRun run("latest");
  Saver saver(run, run.db.get());
  Checkpointer& ck = saver.ck;
  EXPECT_EQ(Checkpointer::latest(run.dir), "");
  for (int64_t step : {2, 10, 4}) ck.save("", step, Json::object(), {});
  // A kill before trainer_state.json, a temp directory of an interrupted save, other names.
  ck.save_weights("checkpoint-12", {});
  fs::create_directories(run.dir / ".checkpoint-14.tmp.1.2");
  std::ofstream(run.dir / ".checkpoint-14.tmp.1.2" / "trainer_state.json") << "{}";
  fs::create_directories(run.dir / "checkpoint-x");
  std::ofstream(run.dir / "checkpoint-x" / "trainer_state.json") << "{}";
  EXPECT_EQ(steps_of(Checkpointer::complete(run.dir)), (std::vector<int64_t>{10, 4, 2}));
  EXPECT_EQ(Checkpointer::latest(run.dir), (run.dir / "checkpoint-10").string());
  EXPECT_FALSE(Checkpointer::is_complete(run.dir / "checkpoint-12"));
  EXPECT_EQ(run.db->query("SELECT COUNT(*) AS n FROM checkpoints")[0]["n"], 3);
}

TEST(Checkpointer, PruneKeepsTheNewestAndTheOneAskedFor) {
  TinyRun run("prune");
  Saver saver(run, run.db.get());
  Checkpointer& ck = saver.ck;
  for (int64_t step = 1; step <= 5; ++step) {
    ck.save("", step, Json::object(), {});
    ck.prune(2, 1);
  }
  EXPECT_EQ(steps_of(Checkpointer::complete(run.dir)), (std::vector<int64_t>{5, 4, 1}));
  EXPECT_EQ(run.db->query("SELECT COUNT(*) AS n FROM checkpoints")[0]["n"], 3);
  EXPECT_EQ(run.events("checkpoint_removed"), 2);
  ck.prune(0, -1);  // 0 keeps everything
  EXPECT_EQ(Checkpointer::complete(run.dir).size(), 3u);
}

TEST(Checkpointer, ResumeRestoresWeightsOptimizerCursorAndStreak) {
  TinyRun run("load");
  Saver saver(run, run.db.get());
  run.fill_grads(0.25f);
  run.opt->step(run.model->params().data(), run.model->grads().data(), 1e-2);
  run.cursor.next(13);
  saver.update.set_nan_streak(2);
  const std::vector<float> saved = run.model->params();
  const std::string dir = saver.ck.save("", 7, Json{{"mine", 3}}, [](const fs::path& d) {
    std::ofstream(d / "extra.txt") << "mine";
  });
  EXPECT_TRUE(fs::exists(fs::path(dir) / "extra.txt"));
  // Another run (other weights, a fresh optimizer and cursor) takes all of it.
  TinyRun other("load_other");
  other.model->init_random(9);
  Saver resumed(other, other.db.get());
  int64_t step = 0;
  const Json state = resumed.ck.resume(dir, step);
  EXPECT_EQ(step, 7);
  EXPECT_EQ(state["mine"], 3);
  EXPECT_EQ(other.model->params(), saved);
  EXPECT_EQ(other.opt->steps(), 1);
  EXPECT_EQ(other.cursor.state(), run.cursor.state());
  EXPECT_EQ(resumed.update.nan_streak(), 2);
  // The same next update from both.
  other.fill_grads(0.25f);
  other.opt->step(other.model->params().data(), other.model->grads().data(), 1e-2);
  run.opt->step(run.model->params().data(), run.model->grads().data(), 1e-2);
  EXPECT_EQ(other.model->params(), run.model->params());
  // Without a checkpoint a resume starts afresh.
  EXPECT_TRUE(resumed.ck.resume("", step).is_null());
}

TEST(Checkpointer, RanksWithoutTheRunDatabaseWriteNothing) {
  TinyRun run("rank1");
  Saver saver(run, nullptr);
  EXPECT_EQ(saver.ck.save("", 3, Json::object(), {}), "");
  EXPECT_EQ(saver.ck.save_weights("final", {}), "");
  EXPECT_FALSE(fs::exists(run.dir / "checkpoint-3"));
  EXPECT_FALSE(fs::exists(run.dir / "final"));
  saver.ck.prune(1, -1);
}

TEST(Checkpointer, AnotherArchitectureIsAnError) {
  TinyRun run("arch");
  Saver saver(run, run.db.get());
  const std::string dir = saver.ck.save("", 1, Json::object(), {});
  Json cfg = policy::preset_config("tiny");
  cfg.update(Json{{"vocab_size", 64}, {"num_hidden_layers", 2}, {"hidden_size", 32}});
  policy::Model<float> bigger(policy::ModelConfig::from_json(cfg));
  policy::Optimizer<float> opt(bigger.table(), policy::OptimizerConfig{});
  EXPECT_THROW(Checkpointer::load(dir, bigger, opt), Error);
}

}  // namespace
}  // namespace aha::train
