// The sandbox: fork -> (new process group, namespaces, read-only root) -> fork -> (rlimits,
// unprivileged user, private cwd) -> exec; the parent polls stdout/stderr against a wall-clock
// deadline and kills the whole group on timeout or output flood.
#include "aha/rewards/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace aha::rewards {
namespace {

// Sandboxed programs run as uid/gid kUidBase + (pid % kUidRange): a user of their own, so
// that RLIMIT_NPROC (counted per user) of one sandbox cannot starve a concurrent one.
constexpr uid_t kUidBase = 2000000;
constexpr uid_t kUidRange = 1000000;

// Isolation flags, sent from the middle process to the parent as one byte.
enum : unsigned char { kNet = 1, kMount = 2, kPid = 4, kUnpriv = 8 };

std::string resolve(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    std::string p = std::string(dir) + "/" + prog;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return prog;
}

// Everything the children need, prepared before fork (no allocation after it).
struct ChildPlan {
  std::string dir;
  std::vector<std::string> file_paths;
  std::string path;
  std::vector<std::string> argv_store, env_store;
  std::vector<char*> argv, envp;
  int stdin_fd = -1, out_w = -1, err_w = -1, report_w = -1;
  const SandboxLimits* limits = nullptr;
  bool root = false;
};

void set_limit(int resource, rlim_t value) {
  struct rlimit rl{value, value};
  setrlimit(resource, &rl);
}

// In the grandchild: limits, user, fds, exec. Only async-signal-safe calls.
[[noreturn]] void exec_child(const ChildPlan& p, uid_t uid, unsigned char flags) {
  setpgid(0, 0);  // the group the parent kills; the middle process stays out to reap it
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if ((flags & kPid) && (flags & kMount)) {
    // a /proc of this PID namespace only: host processes become invisible
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  }
  dup2(p.stdin_fd, 0);
  dup2(p.out_w, 1);
  dup2(p.err_w, 2);
  const SandboxLimits& l = *p.limits;
  double cpu = l.cpu_s > 0 ? l.cpu_s : std::ceil(l.wall_s);
  set_limit(RLIMIT_CPU, static_cast<rlim_t>(cpu < 1 ? 1 : cpu));
  set_limit(RLIMIT_AS, static_cast<rlim_t>(l.memory_mb) << 20);
  set_limit(RLIMIT_FSIZE, static_cast<rlim_t>(l.file_mb) << 20);
  set_limit(RLIMIT_NOFILE, static_cast<rlim_t>(l.n_files));
  set_limit(RLIMIT_NPROC, static_cast<rlim_t>(l.n_procs));
  set_limit(RLIMIT_CORE, 0);
  if (p.root && (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0)) {
    _exit(126);  // never run hostile code as root
  }
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (chdir(p.dir.c_str()) != 0) _exit(126);
  if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
    for (int fd = 3; fd < 4096; ++fd) close(fd);  // kernels before 5.9
  }
  execve(p.path.c_str(), p.argv.data(), p.envp.data());
  _exit(127);
}

// Read-only root with the private dir writable and a private /dev/shm.
bool lock_down_mounts(const ChildPlan& p) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  if (mount(p.dir.c_str(), p.dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
  mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m");
  return mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0;
}

// The middle process: new group, namespaces, then forks the program and reports its status.
[[noreturn]] void middle(const ChildPlan& p) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  unsigned char flags = 0;
  int ns = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (!p.limits->allow_network) ns |= CLONE_NEWNET;
  if (!p.root) ns |= CLONE_NEWUSER;  // unprivileged hosts need a user namespace first
  if (unshare(ns) == 0) {
    flags |= kPid;
    if (!p.limits->allow_network) flags |= kNet;
    if (lock_down_mounts(p)) flags |= kMount;  // also works inside a fresh user namespace
  } else if (!p.limits->allow_network && unshare(p.root ? CLONE_NEWNET
                                                        : CLONE_NEWUSER | CLONE_NEWNET) == 0) {
    flags |= kNet;
  }
  uid_t uid = kUidBase + static_cast<uid_t>(getpid()) % kUidRange;
  if (p.root) {
    flags |= kUnpriv;
    chown(p.dir.c_str(), uid, uid);
    for (const auto& f : p.file_paths) chown(f.c_str(), uid, uid);
  }
  pid_t child = fork();
  if (child < 0) _exit(125);
  if (child == 0) exec_child(p, uid, flags);
  setpgid(child, child);  // also done by the child: whichever runs first
  unsigned char report[1 + sizeof(pid_t)];
  report[0] = flags;
  std::memcpy(report + 1, &child, sizeof(pid_t));
  if (write(p.report_w, report, sizeof(report)) != static_cast<ssize_t>(sizeof(report))) {
    kill(child, SIGKILL);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  _exit(128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Polls the two output pipes until the middle process exits, the deadline passes or the output
// cap is hit; kills the group in the last two cases.
void pump(pid_t pid, pid_t group, int out_r, int err_r, const SandboxLimits& l,
          SandboxResult& r, int& status) {
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
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline && !exited) {
      r.timed_out = true;
      kill(-group, SIGKILL);
      break;
    }
    int wait_ms = exited ? 0 : 20;
    int ready = n > 0 ? poll(pfd, n, wait_ms) : 0;
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
      kill(-group, SIGKILL);
      break;
    }
    if (exited && (ready <= 0 || n == 0)) break;  // drained what was already written
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      kill(-group, SIGKILL);  // stragglers that kept the pipes open
    }
  }
  if (!exited) waitpid(pid, &status, 0);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The private dir with its files (owned by the sandbox user), argv and a clean environment.
std::string prepare(const std::vector<std::string>& argv,
                    const std::vector<std::pair<std::string, std::string>>& files, ChildPlan& p) {
  char tmpl[] = "/tmp/aha-sbx-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
  p.dir = tmpl;
  for (const auto& [name, content] : files) {
    if (name.find('/') != std::string::npos) return "file names may not contain '/'";
    p.file_paths.push_back(p.dir + "/" + name);
    std::ofstream(p.file_paths.back(), std::ios::binary) << content;
  }
  p.path = resolve(argv[0]);
  p.argv_store = argv;
  p.env_store = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + p.dir, "TMPDIR=" + p.dir,
                 "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0"};
  for (auto& a : p.argv_store) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : p.env_store) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  return "";
}

// Reads the middle process's report: isolation flags and the program's process group.
pid_t read_report(int fd, SandboxIsolation& iso) {
  unsigned char buf[1 + sizeof(pid_t)];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t n = read(fd, buf + got, sizeof(buf) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += static_cast<size_t>(n);
  }
  unsigned char flags = buf[0];
  pid_t group;
  std::memcpy(&group, buf + 1, sizeof(pid_t));
  iso = {(flags & kNet) != 0, (flags & kMount) != 0, (flags & kPid) != 0, (flags & kUnpriv) != 0};
  return group;
}

}  // namespace

std::string SandboxResult::status() const {
  if (!error.empty()) return "sandbox error: " + error;
  if (timed_out) return "timeout";
  if (output_truncated) return "output limit";
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
  r.error = prepare(argv, files, p);
  if (!r.error.empty()) {
    std::error_code ec;
    if (!p.dir.empty()) std::filesystem::remove_all(p.dir, ec);
    return r;
  }

  int out[2], err[2], report[2];
  p.stdin_fd = memfd_create("aha-stdin", MFD_CLOEXEC);
  bool ok = p.stdin_fd >= 0 && write_all(p.stdin_fd, input) && lseek(p.stdin_fd, 0, SEEK_SET) == 0;
  if (!ok || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      pipe2(report, O_CLOEXEC) != 0) {
    r.error = std::string("pipes: ") + std::strerror(errno);
    if (p.stdin_fd >= 0) close(p.stdin_fd);
    std::filesystem::remove_all(p.dir);
    return r;
  }
  p.out_w = out[1];
  p.err_w = err[1];
  p.report_w = report[1];
  pid_t pid = fork();
  if (pid == 0) middle(p);
  close(out[1]);
  close(err[1]);
  close(report[1]);
  close(p.stdin_fd);
  int status = 0;
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
  } else {
    pid_t group = read_report(report[0], r.isolation);
    if (group > 0) {
      pump(pid, group, out[0], err[0], limits, r, status);
      kill(-group, SIGKILL);
    } else {
      waitpid(pid, &status, 0);
      r.error = "sandbox setup failed";
    }
    if (!r.timed_out && WIFEXITED(status)) {
      int code = WEXITSTATUS(status);
      if (code > 128) {
        r.signal = code - 128;
      } else {
        r.exit_code = code;
      }
      if (code == 127 && r.out.empty()) r.error = "cannot execute " + p.path;
    } else if (!r.timed_out && WIFSIGNALED(status)) {
      r.signal = WTERMSIG(status);
    }
  }
  close(out[0]);
  close(err[0]);
  close(report[0]);
  std::error_code ec;
  std::filesystem::remove_all(p.dir, ec);
  return r;
}

}  // namespace aha::rewards
