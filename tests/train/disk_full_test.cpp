// Issue 16: a full disk while aha writes a file, a checkpoint or run.db says so with the
// errno text and the path. The disk is a 1 MB tmpfs in a mount namespace of a child process
// (as root, or as an ordinary user through a user namespace); skipped, saying why, where
// neither is allowed.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "aha/core/error.h"
#include "aha/core/fileio.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/model.h"
#include "aha/policy/presets.h"
#include "aha/runlog/run_db.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

// Runs `body(dir)` in a child whose `dir` is a fresh 1 MB tmpfs; returns what body returned,
// or "SKIP: why" when the child cannot mount one.
std::string on_a_full_disk(const std::function<std::string(const std::string&)>& body) {
  const std::string dir = (fs::temp_directory_path() /
                           ("aha-full-disk-" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  int out[2];
  if (pipe(out) != 0) return "SKIP: pipe";
  pid_t child = fork();
  if (child == 0) {
    close(out[0]);
    std::string report;
    const uid_t uid = geteuid();
    const gid_t gid = getegid();
    const int flags = uid == 0 ? CLONE_NEWNS : CLONE_NEWUSER | CLONE_NEWNS;
    if (unshare(flags) != 0) {
      report = "SKIP: cannot make a mount namespace here (" + std::string(strerror(errno)) + ")";
    } else if (uid != 0 && !(write_text("/proc/self/setgroups", "deny") &&
                             write_text("/proc/self/uid_map", std::to_string(uid) + " " +
                                                                  std::to_string(uid) + " 1") &&
                             write_text("/proc/self/gid_map", std::to_string(gid) + " " +
                                                                  std::to_string(gid) + " 1"))) {
      report = "SKIP: cannot map this user into a user namespace";
    } else if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
               mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=1m,mode=0777") != 0) {
      report = "SKIP: cannot mount a 1 MB tmpfs (" + std::string(strerror(errno)) + ")";
    } else {
      try {
        report = body(dir);
      } catch (const std::exception& e) {
        report = std::string("unexpected: ") + e.what();
      }
    }
    (void)!write(out[1], report.data(), report.size());
    _exit(0);
  }
  close(out[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;) report.append(buf, n);
  close(out[0]);
  waitpid(child, nullptr, 0);
  fs::remove_all(dir);
  return report;
}

// Fills `dir` to the last byte with one file (left in place).
void fill(const std::string& dir) {
  const int fd = open((dir + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  const std::string block(4096, 'x');
  while (write(fd, block.data(), block.size()) > 0) {
  }
  const std::string byte(1, 'x');
  while (write(fd, byte.data(), 1) > 0) {
  }
  close(fd);
}

// The error of `f`, or "no error".
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

void expect_full_disk_error(const std::string& report, const std::string& what) {
  if (report.rfind("SKIP: ", 0) == 0) GTEST_SKIP() << report.substr(6);
  EXPECT_NE(report.find("No space left on device"), std::string::npos) << what << ": " << report;
  EXPECT_NE(report.find("aha-full-disk-"), std::string::npos) << what << " names no path: "
                                                               << report;
}

TEST(DiskFull, AtomicFileWriteSaysErrnoAndPath) {
  std::string report = on_a_full_disk([](const std::string& dir) {
    return error_of([&] { write_file_atomic(dir + "/big.json", std::string(2 << 20, 'x')); });
  });
  expect_full_disk_error(report, "write_file_atomic");
  EXPECT_NE(report.find("big.json"), std::string::npos) << report;
}

TEST(DiskFull, CheckpointSaveSaysErrnoAndPath) {
  std::string report = on_a_full_disk([](const std::string& dir) {
    Json cfg = policy::preset_config("tiny");
    cfg.update(Json{{"vocab_size", 64}, {"num_hidden_layers", 1}, {"hidden_size", 32}});
    policy::Model<float> model(policy::ModelConfig::from_json(cfg));
    model.init_random(1);
    fill(dir);
    return error_of([&] { policy::save_model(model, dir + "/checkpoint-1", {}); });
  });
  expect_full_disk_error(report, "save_model");
  EXPECT_NE(report.find("checkpoint-1"), std::string::npos) << report;
}

TEST(DiskFull, RunDatabaseWriteSaysErrnoAndPath) {
  std::string report = on_a_full_disk([](const std::string& dir) {
    runlog::RunDb db(dir + "/run.db", "test", Json::object(), "tiny", false);
    fill(dir);
    return error_of([&] {
      for (int64_t step = 1; step < 1000; ++step) {
        db.write_step(step, Json{{"note", std::string(64 << 10, 'x')}}, {}, false);
      }
    });
  });
  expect_full_disk_error(report, "run.db");
  EXPECT_NE(report.find("run.db"), std::string::npos) << report;
}

}  // namespace
}  // namespace aha
