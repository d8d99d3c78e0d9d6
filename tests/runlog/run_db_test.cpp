// The run database: writes, views, resume, and consistency after SIGKILL at any moment.
#include "aha/runlog/run_db.h"

#include <gtest/gtest.h>

#include <cmath>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "aha/core/error.h"

namespace aha::runlog {
namespace {

namespace fs = std::filesystem;

std::string fresh(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("aha_db_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return (p / "run.db").string();
}

std::vector<Rollout> rows_for(int64_t step, int n) {
  std::vector<Rollout> rows;
  for (int i = 0; i < n; ++i) {
    Rollout r;
    r.prompt_id = "p" + std::to_string(i % 3);
    r.group = i / 2;
    r.sample_index = i % 2;
    r.prompt_text = "What is 2+2?";
    r.completion_text = std::string(10 + i, 'x');
    r.completion_ids.assign(10 + i, 1);
    r.finish_reason = "stop";
    r.reward = i % 2;
    r.logged_advantage = i % 2 ? 1.0 : -1.0;
    r.correct = i % 2;
    r.reward_parts = {{"math", double(i % 2), Json{{"reason", "ok"}}}, {"format", 1.0, Json::object()}};
    rows.push_back(r);
  }
  return rows;
}

TEST(RunDb, WritesAndViews) {
  std::string path = fresh("views");
  {
    const Json cfg = {{"grpo", {{"beta", 0.001}}},
                      {"rewards", {{{"name", "math"}, {"weight", 2.0}}, {{"name", "format"}}}}};
    RunDb db(path, "grpo", cfg, "ckpt", false);
    for (int64_t s = 0; s < 3; ++s) {
      Json m = {{"reward_mean", 0.1 * s}, {"accuracy", 0.2 * s}, {"kl", 0.01}, {"loss", NAN},
                {"expert_load", {{3, 5}, {4, 4}}}};
      db.write_step(s, m, rows_for(s, 6), false);
    }
    db.add_checkpoint(2, "ckpt-2");
    db.finish("finished");
    EXPECT_EQ(db.last_step(), 2);
    EXPECT_THROW(RunDb(path, "grpo", Json::object(), "", false), Error);
  }
  auto db = RunDb::open_readonly(path);
  auto curve = db->query("SELECT step, reward_mean, accuracy FROM reward_curve");
  ASSERT_EQ(curve.size(), 3u);
  EXPECT_DOUBLE_EQ(curve[2]["accuracy"].get<double>(), 0.4);
  auto kl = db->query("SELECT COUNT(*) AS n FROM step_metrics WHERE name = 'kl'");
  EXPECT_EQ(kl[0]["n"], 3);
  auto pass = db->query("SELECT pass_rate FROM prompt_pass_rate WHERE prompt_id = 'p1' AND step = 0");
  EXPECT_DOUBLE_EQ(pass[0]["pass_rate"].get<double>(), 0.5);
  auto hard = db->query("SELECT prompt_id FROM hardest_prompts LIMIT 1");
  EXPECT_EQ(hard.size(), 1u);
  auto longest = db->query("SELECT n_tokens FROM longest_completions LIMIT 1");
  EXPECT_EQ(longest[0]["n_tokens"], 15);
  auto load = db->query("SELECT tokens FROM expert_load WHERE step = 1 AND moe_layer = 0 AND expert = 1");
  EXPECT_EQ(load[0]["tokens"], 5);
  auto rewards = db->query("SELECT COUNT(*) AS n FROM rewards");
  EXPECT_EQ(rewards[0]["n"], 3 * 6 * 2);
  // The weighted breakdown of one completion: math weighs 2, format 1 (unset).
  auto parts = db->query("SELECT reward, value, weight, weighted, total FROM reward_breakdown "
                         "WHERE step = 1 AND sample_index = 1 AND group_index = 0 ORDER BY reward");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]["reward"], "format");
  EXPECT_DOUBLE_EQ(parts[0]["weight"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(parts[1]["weight"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(parts[1]["weighted"].get<double>(), 2.0 * parts[1]["value"].get<double>());
  auto runs = db->query("SELECT status, kind FROM runs");
  EXPECT_EQ(runs[0]["status"], "finished");
  EXPECT_THROW(RunDb::open_readonly(path + ".nope"), Error);
}

// Token-level records round-trip, kept sets included; a version-2 database (no sampling_mask
// column) still reads, and gains the column when opened for writing.
TEST(RunDb, TokenRecordsAndTheV2Migration) {
  std::string path = fresh("tokens");
  auto rows = rows_for(0, 2);
  rows[0].prompt_ids = {5, 6};
  rows[0].completion_ids = {7, 8, 9};
  rows[0].old_logprobs = {-0.5f, -0.25f, -1.0f};
  rows[0].kept_ids = {{3, 7}, {}, {0, 9, 12}};
  rows[1].prompt_ids = {5};
  rows[1].completion_ids = {1};
  rows[1].old_logprobs = {-2.0f};
  {
    RunDb db(path, "grpo", Json::object(), "ckpt", false);
    db.write_step(0, Json::object(), rows, true);
  }
  {
    auto db = RunDb::open_readonly(path);
    auto back = db->read_rollouts(0);
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(back[0].kept_ids, rows[0].kept_ids);
    EXPECT_EQ(back[0].completion_ids, rows[0].completion_ids);
    EXPECT_TRUE(back[1].kept_ids.empty());
  }
  {
    // Make it a version-2 database as an older aha wrote it.
    RunDb db(path, "grpo", Json::object(), "", true);
    db.query("ALTER TABLE rollout_tokens DROP COLUMN sampling_mask");
    db.query("ALTER TABLE rollout_tokens DROP COLUMN loss_mask");
    db.query("DROP TABLE rollout_turns");
    db.query("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  }
  {
    auto db = RunDb::open_readonly(path);
    auto back = db->read_rollouts(0);
    ASSERT_EQ(back.size(), 2u);
    EXPECT_TRUE(back[0].kept_ids.empty());
    EXPECT_EQ(back[0].completion_ids, rows[0].completion_ids);
  }
  RunDb db(path, "grpo", Json::object(), "", true);
  db.write_step(1, Json::object(), rows, true);
  auto migrated = db.read_rollouts(1);
  ASSERT_EQ(migrated.size(), 2u);
  EXPECT_EQ(migrated[0].kept_ids, rows[0].kept_ids);
  EXPECT_EQ(db.query("SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"], "6");
  EXPECT_EQ(db.query("SELECT COUNT(*) AS n FROM rollout_turns")[0]["n"], 0);  // v4 table added
}

// v5 adds the environments' step rewards to rollout_turns: a v4 database reads (no rewards)
// and migrates on the next write.
TEST(RunDb, TurnRewardsAndTheV4Migration) {
  const std::string path = fresh("turns");
  std::vector<Rollout> rows(1);
  rows[0].completion_ids = {1, 2, 3};
  Turn env{"tool", 1, 2, "obs", "game", "ok", 0.5};
  env.reward = -0.25;
  rows[0].turns = {{"assistant", 0, 1, "a", "", "", 0.0}, env,
                   {"assistant", 2, 3, "b", "", "", 0.0}};
  {
    RunDb db(path, "grpo", Json::object(), "", false);
    db.write_step(0, Json::object(), rows, true);
    auto back = db.read_rollouts(0);
    ASSERT_EQ(back[0].turns.size(), 3u);
    EXPECT_DOUBLE_EQ(back[0].turns[1].reward, -0.25);
    EXPECT_TRUE(std::isnan(back[0].turns[0].reward));
    db.query("ALTER TABLE rollout_turns DROP COLUMN reward");
    db.query("UPDATE meta SET value = '4' WHERE key = 'schema_version'");
  }
  {
    auto db = RunDb::open_readonly(path);
    auto back = db->read_rollouts(0);
    ASSERT_EQ(back[0].turns.size(), 3u);
    EXPECT_TRUE(std::isnan(back[0].turns[1].reward));
    EXPECT_EQ(back[0].turns[1].tool, "game");
  }
  RunDb db(path, "grpo", Json::object(), "", true);
  db.write_step(1, Json::object(), rows, true);
  EXPECT_DOUBLE_EQ(db.read_rollouts(1)[0].turns[1].reward, -0.25);
  EXPECT_EQ(db.query("SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"], "6");
}

// v6 adds the policy version of each rollout (asynchronous rollouts): a v5 database reads
// (version unknown) and migrates on the next write.
TEST(RunDb, PolicyVersionsAndTheV5Migration) {
  const std::string path = fresh("versions");
  std::vector<Rollout> rows(2);
  rows[0].completion_ids = {1};
  rows[0].policy_version = 7;
  rows[1].completion_ids = {2};
  {
    RunDb db(path, "grpo", Json::object(), "", false);
    db.write_step(0, Json::object(), rows, true);
    auto back = db.read_rollouts(0);
    EXPECT_EQ(back[0].policy_version, 7);
    EXPECT_EQ(back[1].policy_version, -1);
    db.query("ALTER TABLE rollouts DROP COLUMN policy_version");
    db.query("UPDATE meta SET value = '5' WHERE key = 'schema_version'");
  }
  {
    auto db = RunDb::open_readonly(path);
    EXPECT_EQ(db->read_rollouts(0)[0].policy_version, -1);
  }
  RunDb db(path, "grpo", Json::object(), "", true);
  db.write_step(1, Json::object(), rows, true);
  EXPECT_EQ(db.read_rollouts(1)[0].policy_version, 7);
  EXPECT_EQ(db.query("SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"], "6");
}

TEST(RunDb, ResumeRewindsToTheCheckpoint) {
  std::string path = fresh("resume");
  {
    RunDb db(path, "grpo", Json::object(), "", false);
    for (int64_t s = 0; s < 5; ++s) db.write_step(s, Json{{"x", s}}, rows_for(s, 2), false);
  }
  RunDb db(path, "grpo", Json::object(), "", true);
  db.rewind_to(2);
  EXPECT_EQ(db.last_step(), 2);
  auto n = db.query("SELECT COUNT(*) AS n FROM rollouts");
  EXPECT_EQ(n[0]["n"], 6);
  db.write_step(3, Json{{"x", 3}}, rows_for(3, 2), false);
  EXPECT_THROW(db.write_step(3, Json::object(), {}, false), Error);  // a step is written once
  EXPECT_EQ(db.query("SELECT COUNT(*) AS n FROM events WHERE kind = 'resume'")[0]["n"], 1);
  EXPECT_THROW(RunDb(path + "2", "grpo", Json::object(), "", true), Error);
}

TEST(RunDb, SigkillAtAnyMomentLeavesAConsistentDatabase) {
  for (int trial = 0; trial < 4; ++trial) {
    std::string path = fresh("kill" + std::to_string(trial));
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      RunDb db(path, "grpo", Json::object(), "", false);
      char c = 1;
      if (write(ready[1], &c, 1) != 1) _exit(1);  // created: from here on, kill at any time
      for (int64_t s = 0;; ++s) db.write_step(s, Json{{"step", s}}, rows_for(s, 20), false);
      _exit(0);
    }
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    usleep(trial * 23000);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    auto db = RunDb::open_readonly(path);
    EXPECT_EQ(db->query("PRAGMA integrity_check")[0]["integrity_check"], "ok");
    int64_t last = db->last_step();
    auto steps = db->query("SELECT COUNT(*) AS n FROM steps");
    EXPECT_EQ(steps[0]["n"].get<int64_t>(), last + 1);
    auto rows = db->query("SELECT COUNT(*) AS n FROM rollouts");
    EXPECT_EQ(rows[0]["n"].get<int64_t>(), (last + 1) * 20) << "a step is complete or absent";
    auto rw = db->query("SELECT COUNT(*) AS n FROM rewards");
    EXPECT_EQ(rw[0]["n"].get<int64_t>(), (last + 1) * 40);
  }
}

}  // namespace
}  // namespace aha::runlog
