// The sandbox: fork -> middle (namespaces; builds the private root in a staging tmpfs) -> fork ->
// init (PID 1 of the new PID namespace: pivots into the root, reaps) -> fork -> program
// (rlimits, unprivileged user, exec). aha polls stdout/stderr against a deadline and kills init
// on timeout or flood, which takes the whole PID namespace, and with it the tmpfs, down.
// The three parts: sandbox_root.cpp (the root), sandbox_child.cpp (the processes after fork),
// and this file (aha's side: fork, supervision, the result).
#include "aha/rewards/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "sandbox_internal.h"

namespace aha::rewards {
namespace {

using namespace sandbox_detail;

// Setup (namespaces, mounts, three forks) takes milliseconds; a stuck one is killed.
constexpr double kSetupLimitS = 10.0;
// After a kill or the program's exit, the middle must be gone within this.
constexpr double kReapLimitS = 5.0;

constexpr const char* kStageNames[kNumStages] = {
    "aha exited during setup", "unshare namespaces",
    "write uid_map", "make mounts private", "mount the root tmpfs", "bind",
    "mount the work tmpfs", "write the program's files (more than disk_mb?)",
    "make the root read-only", "fork init", "pivot_root", "fork the program",
    "drop privileges", "install the seccomp filter"};

// Waits for a child at most limit_s, then SIGKILLs it and waits as long again; false if it is
// still there (a process stuck in the kernel: left as a zombie rather than hanging aha).
bool wait_bounded(pid_t pid, int& status, double limit_s) {
  using Clock = std::chrono::steady_clock;
  auto limit = std::chrono::microseconds(static_cast<int64_t>(limit_s * 1e6));
  auto deadline = Clock::now() + limit;
  bool killed = false;
  while (true) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) return true;
    if (Clock::now() >= deadline) {
      if (killed) return false;
      kill(pid, SIGKILL);
      killed = true;
      deadline = Clock::now() + limit;
    }
    usleep(1000);
  }
}

// Reads one message, waiting at most limit_ms; false on timeout or end of pipe.
bool read_msg(int fd, Msg& m, int limit_ms) {
  struct pollfd pfd{fd, POLLIN, 0};
  int ready;
  while ((ready = poll(&pfd, 1, limit_ms)) < 0 && errno == EINTR) {
  }
  if (ready <= 0) return false;
  ssize_t n;
  while ((n = read(fd, &m, sizeof(m))) < 0 && errno == EINTR) {
  }
  return n == static_cast<ssize_t>(sizeof(m));
}

// Polls the two output pipes until the middle process exits, the deadline passes or the output
// cap is hit; kills init (and so the whole sandbox) in the last two cases.
void pump(pid_t pid, pid_t init, int out_r, int err_r, const SandboxLimits& l, SandboxResult& r,
          int& status) {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::microseconds(static_cast<int64_t>(l.wall_s * 1e6));
  std::string* sinks[2] = {&r.out, &r.err};
  int fds[2] = {out_r, err_r};
  bool exited = false;
  char buf[65536];
  while (true) {
    struct pollfd pfd[2];
    nfds_t n = 0;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) pfd[n++] = {fds[i], POLLIN, 0};
    }
    if (std::chrono::steady_clock::now() >= deadline && !exited) {
      r.timed_out = true;
      kill(init, SIGKILL);
      break;
    }
    int ready = n > 0 ? poll(pfd, n, exited ? 0 : 20) : 0;
    if (n == 0 && !exited) usleep(2000);
    for (nfds_t k = 0; k < n && ready > 0; ++k) {
      if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      int i = pfd[k].fd == fds[0] ? 0 : 1;
      ssize_t got = read(fds[i], buf, sizeof(buf));
      if (got <= 0) {
        fds[i] = -1;
        continue;
      }
      sinks[i]->append(buf, static_cast<size_t>(got));
      if (static_cast<int64_t>(sinks[i]->size()) > l.output_bytes) {
        sinks[i]->resize(static_cast<size_t>(l.output_bytes));
        r.output_truncated = true;
      }
    }
    if (r.output_truncated) {
      kill(init, SIGKILL);
      break;
    }
    if (exited && (ready <= 0 || n == 0)) break;  // drained what was already written
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = true;
  }
  if (!exited && !wait_bounded(pid, status, kReapLimitS)) r.error = "sandbox did not exit";
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
std::string describe_failure(const Msg& m, const ChildPlan& p) {
  std::string what = m.a >= 0 && m.a < kNumStages ? kStageNames[m.a] : "setup";
  if (m.a == kEntry && m.c >= 0 && m.c < static_cast<int>(p.entries.size())) {
    what += " " + p.entries[static_cast<size_t>(m.c)].path;
  }
  return what + ": " + std::strerror(m.b);
}

// The exit status of the middle (the program's, passed up through init) into the result.
void read_status(int status, const ChildPlan& p, SandboxResult& r) {
  if (r.timed_out || r.output_truncated) return;
  int code = exit_code_of(status);
  if (code > 128) {
    r.signal = code - 128;
  } else {
    r.exit_code = code;
  }
  if (code == 127 && r.out.empty() && r.error.empty()) {
    r.error = "cannot execute " + p.path +
              " (the sandbox shows only /usr, /bin, /lib* and ro_paths of the host)";
  }
}

// After fork: the report, the pump, the bounded reap and the late messages (init's or the
// program's setup failures, the disk flag).
void supervise(pid_t pid, int out_r, int err_r, int report_r, const ChildPlan& p,
               SandboxResult& r) {
  int status = 0;
  Msg m{};
  bool got = read_msg(report_r, m, static_cast<int>(kSetupLimitS * 1000));
  if (got && m.kind == kStarted) {
    r.isolation = {!p.limits->allow_network, true, true, p.root, true};
    pump(pid, m.a, out_r, err_r, *p.limits, r, status);
  } else {
    r.error = got && m.kind == kFailed ? describe_failure(m, p) : "sandbox setup failed";
    if (!wait_bounded(pid, status, got ? kReapLimitS : 0.0)) r.error += "; did not exit";
  }
  while (read_msg(report_r, m, 100)) {
    if (m.kind == kFailed && r.error.empty()) r.error = describe_failure(m, p);
    if (m.kind == kDisk) r.disk_full = m.a != 0;
  }
  if (r.error.empty()) read_status(status, p, r);
  if (!r.error.empty()) r.isolation = {};
}

}  // namespace

std::string SandboxResult::status() const {
  if (!error.empty()) return "sandbox error: " + error;
  if (timed_out) return "timeout";
  if (output_truncated) return "output limit";
  if (disk_full) return "disk quota exceeded";
  if (signal != 0) return "signal " + std::to_string(signal);
  if (exit_code != 0) return "exit " + std::to_string(exit_code);
  return "ok";
}

SandboxResult run_sandboxed(const std::vector<std::string>& argv,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            std::string_view input, const SandboxLimits& limits) {
  SandboxResult r;
  if (argv.empty()) {
    r.error = "empty argv";
    return r;
  }
  ChildPlan p;
  p.limits = &limits;
  p.root = geteuid() == 0;
  p.aha = getpid();
  r.error = prepare(argv, files, limits, p);
  if (!r.error.empty()) return r;

  int out[2], err[2], report[2];
  p.stdin_fd = memfd_create("aha-stdin", MFD_CLOEXEC);
  bool ok = p.stdin_fd >= 0 && write_all(p.stdin_fd, input) && lseek(p.stdin_fd, 0, SEEK_SET) == 0;
  if (!ok || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      pipe2(report, O_CLOEXEC) != 0) {
    r.error = std::string("pipes: ") + std::strerror(errno);
    if (p.stdin_fd >= 0) close(p.stdin_fd);
    return r;
  }
  p.out_w = out[1];
  p.err_w = err[1];
  p.report_w = report[1];
  pid_t pid = fork();
  if (pid == 0) middle(p);
  for (int fd : {out[1], err[1], report[1], p.stdin_fd}) close(fd);
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
  } else {
    supervise(pid, out[0], err[0], report[0], p, r);
  }
  for (int fd : {out[0], err[0], report[0]}) close(fd);
  return r;
}

std::string sandbox_unavailable_reason() {
  SandboxLimits l;
  l.wall_s = 10;
  SandboxResult r = run_sandboxed({"true"}, {}, "", l);
  if (!r.error.empty()) return r.error;
  return r.ok() ? std::string() : "running `true` in it gave " + r.status();
}

}  // namespace aha::rewards
