// The SQLite run database: one file per run holding its config, per-step metrics, every
// rollout, every reward, checkpoints and events. WAL mode; each step is one transaction, so a
// run killed at any moment leaves a consistent database whose last step is complete.
// Not thread-safe: one writer (the trainer's main thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/rollout.h"

struct sqlite3;

namespace aha::runlog {

constexpr int kSchemaVersion = 6;

class RunDb {
 public:
  // Creates <path> (and a runs row), or opens it for a resume when it exists and resume=true.
  // An existing database without resume is an error (runs are never silently overwritten).
  // A second writer of the same run directory is an error too (see lock_run_dir).
  RunDb(const std::string& path, const std::string& kind, const Json& config,
        const std::string& model, bool resume);
  // Opens an existing database read-only (aha runs, aha report); a run directory stands for
  // its run.db.
  static std::unique_ptr<RunDb> open_readonly(const std::string& path);
  ~RunDb();
  RunDb(const RunDb&) = delete;
  RunDb& operator=(const RunDb&) = delete;

  int64_t run_id() const { return run_id_; }
  const std::string& path() const { return path_; }
  // The last step whose transaction committed (-1 when none).
  int64_t last_step() const;
  // Resume: removes every row of steps after `step` (a checkpoint's step) and logs an event.
  void rewind_to(int64_t step);

  // One step, atomically: metrics, rollouts and their rewards. With `tokens`, the token-level
  // record (ids, old/reference logprobs, routing, sampling mask) of every rollout learned from
  // goes to rollout_tokens too: what `aha export-rollouts` needs to replay the step.
  void write_step(int64_t step, const Json& metrics, const std::vector<Rollout>& rollouts,
                  bool tokens);
  void add_checkpoint(int64_t step, const std::string& path);
  // A checkpoint deleted by checkpoint hygiene: its row goes, an event says so.
  void remove_checkpoint(int64_t step);
  void event(int64_t step, const std::string& level, const std::string& kind,
             const std::string& message);
  void finish(const std::string& status);

  // The rollouts of one step with their rewards and token-level records, in logged order
  // (logged_advantage holds the advantage column; the token fields are empty where the step
  // logged none).
  std::vector<Rollout> read_rollouts(int64_t step) const;

  // Runs a query and returns rows as JSON objects (column -> value). For tools and tests.
  std::vector<Json> query(const std::string& sql) const;
  // What an older schema lacks (readers of any version check before they read). The names go
  // into the SQL as they are: the schema's own names, never user input.
  bool has_column(const std::string& table, const std::string& column) const;
  bool has_table(const std::string& table) const;

 private:
  RunDb() = default;
  void exec(const std::string& sql) const;
  void migrate();
  // One writer per run directory: an exclusive lock on <run.db>.lock, held until destruction.
  void lock_run_dir();

  sqlite3* db_ = nullptr;
  std::string path_;
  int64_t run_id_ = 0;
  // A member, not closed in ~RunDb: a constructor that throws after locking must unlock too.
  struct LockFd {
    int fd = -1;
    LockFd() = default;
    LockFd(const LockFd&) = delete;
    LockFd& operator=(const LockFd&) = delete;
    ~LockFd();
  } lock_;
};

}  // namespace aha::runlog
