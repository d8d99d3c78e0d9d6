// SQLite access for the run database: RAII statements, one transaction per step, migrations.
#include "aha/runlog/run_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "aha/core/error.h"
#include "aha_schema.h"

namespace aha::runlog {

namespace {

std::string now_iso() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string hostname() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// For I/O failures (a full disk, a read-only medium) the operating system's errno text, which
// SQLite's own message leaves out; "" otherwise (the errno of an older, harmless miss).
std::string os_error(sqlite3* db) {
  const int code = sqlite3_errcode(db) & 0xff;
  const bool io = code == SQLITE_IOERR || code == SQLITE_FULL || code == SQLITE_CANTOPEN ||
                  code == SQLITE_READONLY;
  int err = sqlite3_system_errno(db);
  // SQLite reports a short write as SQLITE_FULL and keeps no errno for it: that is ENOSPC
  if (err == 0 && code == SQLITE_FULL) err = ENOSPC;
  return io && err != 0 ? std::string(" (") + std::strerror(err) + ")" : std::string();
}

// SQLite's message with the database's path and the errno text of an I/O failure.
std::string db_error(sqlite3* db) {
  std::string msg = sqlite3_errmsg(db);
  const char* file = sqlite3_db_filename(db, "main");
  if (file != nullptr && *file != 0) msg = std::string(file) + ": " + msg;
  return msg + os_error(db);
}

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) {
      fail("[runlog] cannot prepare '", sql.substr(0, 60), "': ", db_error(db));
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(s_, i, v));
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  template <typename V>
  Stmt& bind_blob(int i, const std::vector<V>& v) {
    if (v.empty()) return bind_null(i);
    check(sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size() * sizeof(V)), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(s_, i));
    return *this;
  }
  // Steps once; true while rows come back.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail("[runlog] ", db_error(db_));
    return false;
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  sqlite3_stmt* get() { return s_; }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail("[runlog] bind failed: ", db_error(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

// Finite doubles bind as REAL, anything else (NaN, Inf) as NULL: SQLite has no NaN.
void bind_real(Stmt& s, int i, double v) {
  if (std::isfinite(v)) {
    s.bind(i, v);
  } else {
    s.bind_null(i);
  }
}

std::string column_text(sqlite3_stmt* q, int i) {
  const unsigned char* t = sqlite3_column_text(q, i);
  return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t));
}

double column_real(sqlite3_stmt* q, int i) {
  return sqlite3_column_type(q, i) == SQLITE_NULL ? std::nan("") : sqlite3_column_double(q, i);
}

template <typename V>
std::vector<V> column_blob(sqlite3_stmt* q, int i) {
  const void* b = sqlite3_column_blob(q, i);
  const size_t bytes = static_cast<size_t>(sqlite3_column_bytes(q, i));
  std::vector<V> v(bytes / sizeof(V));
  if (b != nullptr && !v.empty()) std::memcpy(v.data(), b, v.size() * sizeof(V));
  return v;
}

void write_tokens(Stmt& tk, int64_t rid, const Rollout& r) {
  std::vector<int32_t> routing;
  for (const auto& l : r.routing) routing.insert(routing.end(), l.begin(), l.end());
  tk.reset();
  tk.bind(1, rid).bind(2, Json(r.prompt_ids).dump()).bind(3, Json(r.completion_ids).dump());
  tk.bind_blob(4, r.old_logprobs).bind_blob(5, r.ref_logprobs).bind_blob(6, routing);
  tk.bind(7, static_cast<int64_t>(r.routing.size()));
  if (r.kept_ids.empty()) {
    tk.bind_null(8);
  } else {
    std::vector<int32_t> mask;
    for (const auto& ids : r.kept_ids) {
      mask.push_back(static_cast<int32_t>(ids.size()));
      mask.insert(mask.end(), ids.begin(), ids.end());
    }
    tk.bind_blob(8, mask);
  }
  tk.bind_blob(9, r.loss_mask);
  tk.step();
}

void write_turns(Stmt& tu, int64_t rid, const Rollout& r) {
  for (size_t i = 0; i < r.turns.size(); ++i) {
    const Turn& t = r.turns[i];
    tu.reset();
    tu.bind(1, rid).bind(2, static_cast<int64_t>(i)).bind(3, t.role).bind(4, t.begin).bind(5, t.end);
    tu.bind(6, t.text);
    if (t.role == "tool") {
      tu.bind(7, t.tool).bind(8, t.status);
      bind_real(tu, 9, t.seconds);
    } else {
      tu.bind_null(7).bind_null(8).bind_null(9);
    }
    bind_real(tu, 10, t.reward);
    tu.step();
  }
}

// The sampling_mask blob back into per-token sets; a malformed blob is a corrupt database.
std::vector<std::vector<int32_t>> decode_mask(const std::vector<int32_t>& mask) {
  std::vector<std::vector<int32_t>> sets;
  for (size_t i = 0; i < mask.size();) {
    const int32_t count = mask[i++];
    if (count < 0 || static_cast<size_t>(count) > mask.size() - i) {
      fail("[runlog] corrupt sampling_mask (entry ", sets.size(), " claims ", count, " ids)");
    }
    sets.emplace_back(mask.begin() + i, mask.begin() + i + count);
    i += count;
  }
  return sets;
}

// Columns from `first`: prompt_ids, completion_ids, old_logprobs, ref_logprobs, routing,
// routing_layers, sampling_mask.
void read_tokens(sqlite3_stmt* q, int first, Rollout& r) {
  r.prompt_ids = Json::parse(column_text(q, first)).get<std::vector<int32_t>>();
  r.completion_ids = Json::parse(column_text(q, first + 1)).get<std::vector<int32_t>>();
  r.old_logprobs = column_blob<float>(q, first + 2);
  r.ref_logprobs = column_blob<float>(q, first + 3);
  std::vector<int32_t> routing = column_blob<int32_t>(q, first + 4);
  const int64_t layers = sqlite3_column_int64(q, first + 5);
  if (layers > 0 && !routing.empty()) {
    const size_t per = routing.size() / static_cast<size_t>(layers);
    for (int64_t l = 0; l < layers; ++l) {
      r.routing.emplace_back(routing.begin() + l * per, routing.begin() + (l + 1) * per);
    }
  }
  r.kept_ids = decode_mask(column_blob<int32_t>(q, first + 6));
  r.loss_mask = column_blob<uint8_t>(q, first + 7);
  if (!r.loss_mask.empty() && r.loss_mask.size() != r.completion_ids.size()) {
    fail("[runlog] corrupt loss_mask (", r.loss_mask.size(), " entries for ", r.completion_ids.size(),
         " completion tokens)");
  }
}

}  // namespace

void RunDb::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail("[runlog] ", path_, ": ", msg, os_error(db_));
  }
}

bool RunDb::has_table(const std::string& table) const {
  return !query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '" + table + "'").empty();
}

bool RunDb::has_column(const std::string& table, const std::string& column) const {
  for (const Json& c : query("PRAGMA table_info(" + table + ")")) {
    if (c["name"] == column) return true;
  }
  return false;
}

void RunDb::migrate() {
  // Version 1 is the base schema; later versions append ALTERs here, in order.
  exec(kSchemaSql);
  auto rows = query("SELECT value FROM meta WHERE key = 'schema_version'");
  int version = rows.empty() ? 0 : std::stoi(rows[0]["value"].get<std::string>());
  if (version > kSchemaVersion) {
    fail("[runlog] ", path_, " has schema version ", version, ", newer than this aha (",
         kSchemaVersion, ")");
  }
  // v3: rollout_tokens.sampling_mask (tables created just now by kSchemaSql already have it).
  if (version > 0 && version < 3 && !has_column("rollout_tokens", "sampling_mask")) {
    exec("ALTER TABLE rollout_tokens ADD COLUMN sampling_mask BLOB");
  }
  // v4: rollout_tokens.loss_mask (rollout_turns comes with kSchemaSql).
  if (version > 0 && version < 4 && !has_column("rollout_tokens", "loss_mask")) {
    exec("ALTER TABLE rollout_tokens ADD COLUMN loss_mask BLOB");
  }
  // v5: rollout_turns.reward (environments' step rewards).
  if (version > 0 && version < 5 && !has_column("rollout_turns", "reward")) {
    exec("ALTER TABLE rollout_turns ADD COLUMN reward REAL");
  }
  // v6: rollouts.policy_version (asynchronous rollouts).
  if (version > 0 && version < 6 && !has_column("rollouts", "policy_version")) {
    exec("ALTER TABLE rollouts ADD COLUMN policy_version INTEGER");
  }
  exec("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '" +
       std::to_string(kSchemaVersion) + "')");
}

RunDb::LockFd::~LockFd() {
  if (fd >= 0) ::close(fd);
}

void RunDb::lock_run_dir() {
  // flock, not SQLite's locks: those guard one transaction, this the whole run. The kernel
  // drops it when the process dies, however it dies.
  const std::string lock = path_ + ".lock";
  lock_.fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_.fd < 0) fail("[runlog] cannot create ", lock, ": ", std::strerror(errno));
  if (::flock(lock_.fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const ssize_t n = ::pread(lock_.fd, buf, sizeof(buf) - 1, 0);
    ::close(lock_.fd);
    lock_.fd = -1;
    const std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    fail("another aha process (pid ", pid.substr(0, pid.find('\n')), ") is running in ",
         std::filesystem::path(path_).parent_path().string(), "; one process per run directory");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_.fd, 0) == 0) {
    [[maybe_unused]] ssize_t w = ::pwrite(lock_.fd, pid.data(), pid.size(), 0);
  }
}

RunDb::RunDb(const std::string& path, const std::string& kind, const Json& config,
             const std::string& model, bool resume)
    : path_(path) {
  lock_run_dir();
  const bool exists = std::filesystem::exists(path);
  if (exists && !resume) fail("[runlog] ", path, " exists (resume the run, or pick a new output_dir)");
  if (!exists && resume) fail("[runlog] cannot resume: ", path, " does not exist");
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    fail("[runlog] cannot open ", path, ": ", msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  migrate();
  if (resume) {
    auto rows = query("SELECT id FROM runs ORDER BY id DESC LIMIT 1");
    if (rows.empty()) fail("[runlog] ", path, " holds no run to resume");
    run_id_ = rows[0]["id"].get<int64_t>();
    Stmt s(db_, "UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ?");
    s.bind(1, run_id_).step();
    return;
  }
  Stmt s(db_,
         "INSERT INTO runs(kind, config, model, started_at, status, host, git_rev) "
         "VALUES (?, ?, ?, ?, 'running', ?, ?)");
  const char* rev = std::getenv("AHA_GIT_REV");
  s.bind(1, kind).bind(2, config.dump()).bind(3, model).bind(4, now_iso()).bind(5, hostname());
  if (rev != nullptr) {
    s.bind(6, std::string(rev));
  } else {
    s.bind_null(6);
  }
  s.step();
  run_id_ = sqlite3_last_insert_rowid(db_);
}

std::unique_ptr<RunDb> RunDb::open_readonly(const std::string& given) {
  // A run directory stands for its run.db (aha runs runs/x).
  std::string path = given;
  if (std::filesystem::is_directory(path)) {
    path = (std::filesystem::path(given) / "run.db").string();
    if (!std::filesystem::exists(path)) fail("[runlog] ", given, " is a directory without a run.db");
  }
  if (!std::filesystem::exists(path)) fail("[runlog] ", path, " does not exist");
  if (!std::filesystem::is_regular_file(path)) fail("[runlog] ", path, " is not a regular file");
  std::unique_ptr<RunDb> db(new RunDb());
  db->path_ = path;
  // A WAL database needs its -shm file even to read; on read-only media (a mounted archive,
  // a read-only directory) open it as immutable instead, as nothing can be writing it there.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const bool read_only_media = ::access(dir.empty() ? "." : dir.c_str(), W_OK) != 0 ||
                               ::access(path.c_str(), W_OK) != 0;
  std::string uri = "file:";
  for (char c : std::filesystem::absolute(path).string()) {
    if (c == '%' || c == '?' || c == '#') {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", static_cast<unsigned char>(c));
      uri += hex;
    } else {
      uri += c;
    }
  }
  if (read_only_media) uri += "?immutable=1";
  if (sqlite3_open_v2(uri.c_str(), &db->db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) !=
      SQLITE_OK) {
    fail("[runlog] cannot open ", path, ": ", sqlite3_errmsg(db->db_));
  }
  sqlite3_busy_timeout(db->db_, 5000);
  std::vector<Json> rows;
  try {
    rows = db->query("SELECT value FROM meta WHERE key = 'schema_version'");
  } catch (const Error& e) {
    const int code = sqlite3_errcode(db->db_);
    if (code == SQLITE_NOTADB || code == SQLITE_ERROR) {
      fail("[runlog] ", path, " is not an aha run database");
    }
    fail("[runlog] cannot read ", path, ": ", sqlite3_errmsg(db->db_));
  }
  if (rows.empty()) fail("[runlog] ", path, " is not an aha run database");
  auto runs = db->query("SELECT id FROM runs ORDER BY id DESC LIMIT 1");
  if (!runs.empty()) db->run_id_ = runs[0]["id"].get<int64_t>();
  return db;
}

RunDb::~RunDb() {
  if (db_ != nullptr) sqlite3_close(db_);
}

int64_t RunDb::last_step() const {
  auto rows = query("SELECT MAX(step) AS s FROM steps WHERE run_id = " + std::to_string(run_id_));
  return rows.empty() || rows[0]["s"].is_null() ? -1 : rows[0]["s"].get<int64_t>();
}

void RunDb::rewind_to(int64_t step) {
  const std::string id = std::to_string(run_id_), s = std::to_string(step);
  exec("BEGIN");
  try {
    exec("DELETE FROM rewards WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = " + id +
         " AND step > " + s + ")");
    exec("DELETE FROM rollout_tokens WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = " +
         id + " AND step > " + s + ")");
    exec("DELETE FROM rollout_turns WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = " +
         id + " AND step > " + s + ")");
    exec("DELETE FROM rollouts WHERE run_id = " + id + " AND step > " + s);
    exec("DELETE FROM steps WHERE run_id = " + id + " AND step > " + s);
    exec("DELETE FROM checkpoints WHERE run_id = " + id + " AND step > " + s);
    exec("COMMIT");
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
  event(step, "info", "resume", "resumed from the checkpoint of step " + s);
}

void RunDb::write_step(int64_t step, const Json& metrics, const std::vector<Rollout>& rollouts,
                       bool tokens) {
  exec("BEGIN IMMEDIATE");
  try {
    Stmt st(db_, "INSERT INTO steps(run_id, step, time, metrics) VALUES (?, ?, ?, ?)");
    st.bind(1, run_id_).bind(2, step).bind(3, now_iso()).bind(4, metrics.dump(-1, ' ', false,
                                                                               Json::error_handler_t::replace));
    st.step();
    Stmt ro(db_,
            "INSERT INTO rollouts(run_id, step, prompt_id, group_index, sample_index, prompt, "
            "completion, n_tokens, finish_reason, reward, advantage, correct, policy_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Stmt rw(db_, "INSERT INTO rewards(rollout_id, name, value, details) VALUES (?, ?, ?, ?)");
    Stmt tk(db_,
            "INSERT INTO rollout_tokens(rollout_id, prompt_ids, completion_ids, old_logprobs, "
            "ref_logprobs, routing, routing_layers, sampling_mask, loss_mask) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    Stmt tu(db_,
            "INSERT INTO rollout_turns(rollout_id, turn, role, begin_token, end_token, text, tool, "
            "status, seconds, reward) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const Rollout& r : rollouts) {
      ro.reset();
      ro.bind(1, run_id_).bind(2, step).bind(3, r.prompt_id).bind(4, r.group);
      ro.bind(5, r.sample_index).bind(6, r.prompt_text).bind(7, r.completion_text).bind(8, r.n());
      ro.bind(9, r.finish_reason);
      bind_real(ro, 10, r.reward);
      bind_real(ro, 11, r.logged_advantage);
      if (r.correct < 0) {
        ro.bind_null(12);
      } else {
        ro.bind(12, int64_t{r.correct});
      }
      if (r.policy_version < 0) {
        ro.bind_null(13);
      } else {
        ro.bind(13, r.policy_version);
      }
      ro.step();
      const int64_t rid = sqlite3_last_insert_rowid(db_);
      for (const auto& [name, value, details] : r.reward_parts) {
        rw.reset();
        rw.bind(1, rid).bind(2, name);
        bind_real(rw, 3, value);
        rw.bind(4, details.dump(-1, ' ', false, Json::error_handler_t::replace));
        rw.step();
      }
      if (tokens && r.learn && !r.completion_ids.empty()) write_tokens(tk, rid, r);
      write_turns(tu, rid, r);
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<Rollout> RunDb::read_rollouts(int64_t step) const {
  std::vector<Rollout> out;
  Stmt s(db_,
         "SELECT r.id, r.prompt_id, r.group_index, r.sample_index, r.prompt, r.completion, "
         "r.n_tokens, r.finish_reason, r.reward, r.advantage, r.correct, t.prompt_ids, "
         "t.completion_ids, t.old_logprobs, t.ref_logprobs, t.routing, t.routing_layers, " +
         std::string(has_column("rollout_tokens", "sampling_mask") ? "t.sampling_mask, " : "NULL, ") +
         std::string(has_column("rollout_tokens", "loss_mask") ? "t.loss_mask, " : "NULL, ") +
         std::string(has_column("rollouts", "policy_version") ? "r.policy_version " : "NULL ") +
         "FROM rollouts r LEFT JOIN rollout_tokens t ON t.rollout_id = r.id "
         "WHERE r.run_id = ? AND r.step = ? ORDER BY r.id");
  s.bind(1, run_id_).bind(2, step);
  std::vector<int64_t> ids;
  while (s.step()) {
    sqlite3_stmt* q = s.get();
    Rollout r;
    ids.push_back(sqlite3_column_int64(q, 0));
    r.prompt_id = column_text(q, 1);
    r.group = sqlite3_column_int64(q, 2);
    r.sample_index = sqlite3_column_int64(q, 3);
    r.prompt_text = column_text(q, 4);
    r.completion_text = column_text(q, 5);
    r.finish_reason = column_text(q, 7);
    r.reward = column_real(q, 8);
    r.logged_advantage = column_real(q, 9);
    r.correct = sqlite3_column_type(q, 10) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 10);
    if (sqlite3_column_type(q, 11) != SQLITE_NULL) read_tokens(q, 11, r);
    if (sqlite3_column_type(q, 19) != SQLITE_NULL) r.policy_version = sqlite3_column_int64(q, 19);
    out.push_back(std::move(r));
  }
  if (has_table("rollout_turns")) {
    // A read-only v4 database has no reward column.
    const std::string reward = has_column("rollout_turns", "reward") ? "reward" : "NULL";
    Stmt tu(db_, "SELECT role, begin_token, end_token, text, tool, status, seconds, " + reward +
                     " FROM rollout_turns WHERE rollout_id = ? ORDER BY turn");
    for (size_t i = 0; i < out.size(); ++i) {
      tu.reset();
      tu.bind(1, ids[i]);
      while (tu.step()) {
        sqlite3_stmt* q = tu.get();
        Turn t;
        t.role = column_text(q, 0);
        t.begin = sqlite3_column_int64(q, 1);
        t.end = sqlite3_column_int64(q, 2);
        t.text = column_text(q, 3);
        t.tool = column_text(q, 4);
        t.status = column_text(q, 5);
        t.seconds = sqlite3_column_type(q, 6) == SQLITE_NULL ? 0.0 : sqlite3_column_double(q, 6);
        if (sqlite3_column_type(q, 7) != SQLITE_NULL) t.reward = sqlite3_column_double(q, 7);
        out[i].turns.push_back(std::move(t));
      }
    }
  }
  Stmt rw(db_, "SELECT name, value, details FROM rewards WHERE rollout_id = ? ORDER BY name");
  for (size_t i = 0; i < out.size(); ++i) {
    rw.reset();
    rw.bind(1, ids[i]);
    while (rw.step()) {
      std::string details = column_text(rw.get(), 2);
      out[i].reward_parts.emplace_back(column_text(rw.get(), 0), column_real(rw.get(), 1),
                                  details.empty() ? Json::object() : Json::parse(details));
    }
  }
  return out;
}

void RunDb::remove_checkpoint(int64_t step) {
  Stmt s(db_, "DELETE FROM checkpoints WHERE run_id = ? AND step = ?");
  s.bind(1, run_id_).bind(2, step).step();
  event(step, "info", "checkpoint_removed",
        "checkpoint of step " + std::to_string(step) + " removed (grpo.keep_checkpoints)");
}

void RunDb::add_checkpoint(int64_t step, const std::string& path) {
  Stmt s(db_, "INSERT OR REPLACE INTO checkpoints(run_id, step, path, created_at) VALUES (?, ?, ?, ?)");
  s.bind(1, run_id_).bind(2, step).bind(3, path).bind(4, now_iso()).step();
}

void RunDb::event(int64_t step, const std::string& level, const std::string& kind,
                  const std::string& message) {
  Stmt s(db_, "INSERT INTO events(run_id, step, time, level, kind, message) VALUES (?, ?, ?, ?, ?, ?)");
  s.bind(1, run_id_).bind(2, step).bind(3, now_iso()).bind(4, level).bind(5, kind).bind(6, message);
  s.step();
}

void RunDb::finish(const std::string& status) {
  Stmt s(db_, "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?");
  s.bind(1, status).bind(2, now_iso()).bind(3, run_id_).step();
}

std::vector<Json> RunDb::query(const std::string& sql) const {
  Stmt s(db_, sql);
  std::vector<Json> rows;
  while (s.step()) {
    Json row = Json::object();
    const int n = sqlite3_column_count(s.get());
    for (int i = 0; i < n; ++i) {
      const char* name = sqlite3_column_name(s.get(), i);
      switch (sqlite3_column_type(s.get(), i)) {
        case SQLITE_INTEGER: row[name] = sqlite3_column_int64(s.get(), i); break;
        case SQLITE_FLOAT: row[name] = sqlite3_column_double(s.get(), i); break;
        case SQLITE_NULL: row[name] = nullptr; break;
        case SQLITE_BLOB:
          row[name] = "<" + std::to_string(sqlite3_column_bytes(s.get(), i)) + "-byte blob>";
          break;
        default:
          row[name] = std::string(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), i)));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace aha::runlog
