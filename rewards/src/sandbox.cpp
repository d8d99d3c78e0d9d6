// The sandbox: fork -> middle (namespaces; builds the private root in a staging tmpfs) -> fork ->
// init (PID 1 of the new PID namespace: pivots into the root, reaps) -> fork -> program
// (rlimits, unprivileged user, exec). aha polls stdout/stderr against a deadline and kills init
// on timeout or flood, which takes the whole PID namespace, and with it the tmpfs, down.
// Whatever kills aha: the kernel kills the middle (PDEATHSIG), its death kills init (PDEATHSIG),
// and init's death kills every process of the namespace. Middle and init never change
// credentials after arming PDEATHSIG (a credential change clears it), and the program cannot
// undo it: init ignores signals from inside its namespace and is root, or holds capabilities the
// program lacks, so the program cannot ptrace it either.
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
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "sandbox_seccomp.h"

namespace aha::rewards {
namespace {

// Sandboxed programs run as uid/gid kUidBase + (pid % kUidRange): a user of their own, so
// that RLIMIT_NPROC (counted per user) of one sandbox cannot starve a concurrent one.
constexpr uid_t kUidBase = 2000000;
constexpr uid_t kUidRange = 1000000;
// Where the middle builds the root, inside its own mount namespace (the host's /tmp is hidden
// there, which is why ro_paths may not lie under it).
constexpr const char* kStage = "/tmp";
constexpr const char* kWork = "/sandbox";  // the program's cwd, HOME and TMPDIR
constexpr int kWorkInodes = 4096;          // files the work dir may hold
// Setup (namespaces, mounts, three forks) takes milliseconds; a stuck one is killed.
constexpr double kSetupLimitS = 10.0;
// After a kill or the program's exit, the middle must be gone within this.
constexpr double kReapLimitS = 5.0;
// The children's fixed descriptors: 0-2 the program's stdio, 3 the report pipe.
constexpr int kReportFd = 3;

// Messages on the report pipe, each one write (atomic: smaller than PIPE_BUF).
enum MsgKind : int32_t { kStarted = 1, kFailed = 2, kDisk = 3 };
struct Msg {
  int32_t kind, a, b, c;  // kStarted: init pid; kFailed: stage, errno, entry; kDisk: full
};

enum Stage : int32_t {
  kDeathSig, kUnshare, kIdMap, kPrivate, kStaging, kEntry, kWorkMount, kFiles, kReadOnly,
  kForkInit, kPivot, kForkProgram, kCreds, kSeccomp, kNumStages
};
constexpr const char* kStageNames[kNumStages] = {
    "aha exited during setup", "unshare namespaces (user namespaces disabled?)",
    "write uid_map", "make mounts private", "mount the root tmpfs", "bind",
    "mount the work tmpfs", "write the program's files (more than disk_mb?)",
    "make the root read-only", "fork init", "pivot_root", "fork the program",
    "drop privileges", "install the seccomp filter"};

// One path of the sandbox's root, made under kStage by the middle.
struct RootEntry {
  enum class Kind { kDir, kSymlink, kBindDir, kBindFile } kind;
  std::string path;     // inside the sandbox, e.g. /usr
  std::string staged;   // kStage + path
  std::string source;   // host path to bind, or the symlink's target
  bool device = false;  // a /dev node: keeps device access
};

// Everything the children need, prepared before fork: after it only async-signal-safe calls.
struct ChildPlan {
  std::vector<RootEntry> entries;
  std::string staged_work, staged_tmp, staged_shm, staged_proc, work_opts;
  std::vector<std::pair<std::string, std::string>> files;  // staged path, content
  std::string path, uid_map, gid_map;
  std::vector<std::string> argv_store, env_store;
  std::vector<char*> argv, envp;
  int stdin_fd = -1, out_w = -1, err_w = -1, report_w = -1;
  const SandboxLimits* limits = nullptr;
  bool root = false;
  pid_t aha = 0;
};

std::string resolve(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    std::string p = std::string(dir) + "/" + prog;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return prog;
}

[[noreturn]] void fail(Stage stage, int entry = -1) {
  Msg m{kFailed, stage, errno, entry};
  (void)!write(kReportFd, &m, sizeof(m));
  _exit(125);
}

// PDEATHSIG, then a check that the parent had not already died (we would have been reparented).
void arm_death_signal(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) fail(kDeathSig);
}

bool write_file(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
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

// Makes a bind read-only, keeping the flags a user namespace may not drop (nosuid, nodev,
// noexec, atime) and adding nosuid (and nodev off /dev).
bool remount_read_only(const char* target, bool device) {
  struct statfs sf;
  if (statfs(target, &sf) != 0) return false;
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID;
  if (!device || (sf.f_flags & ST_NODEV)) flags |= MS_NODEV;
  if (sf.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sf.f_flags & ST_NOATIME) flags |= MS_NOATIME;
  if (sf.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sf.f_flags & ST_RELATIME) flags |= MS_RELATIME;
  return mount(nullptr, target, nullptr, flags, nullptr) == 0;
}

bool make_entry(const RootEntry& e) {
  const char* t = e.staged.c_str();
  switch (e.kind) {
    case RootEntry::Kind::kDir:
      return mkdir(t, 0755) == 0 || errno == EEXIST;
    case RootEntry::Kind::kSymlink:
      return symlink(e.source.c_str(), t) == 0;
    case RootEntry::Kind::kBindDir:
      if (mkdir(t, 0755) != 0 && errno != EEXIST) return false;
      return mount(e.source.c_str(), t, nullptr, MS_BIND | MS_REC, nullptr) == 0 &&
             remount_read_only(t, e.device);
    case RootEntry::Kind::kBindFile: {
      int fd = open(t, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      close(fd);
      return mount(e.source.c_str(), t, nullptr, MS_BIND, nullptr) == 0 &&
             remount_read_only(t, e.device);
    }
  }
  return false;
}

// In the middle, inside the new mount namespace: the root tmpfs with its binds, the work tmpfs
// (at its own path and at /tmp and /dev/shm) holding the files, then the root made read-only.
void build_root(const ChildPlan& p, uid_t uid) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(kPrivate);
  if (mount("tmpfs", kStage, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1024,mode=0755"))
    fail(kStaging);
  for (size_t i = 0; i < p.entries.size(); ++i) {
    if (!make_entry(p.entries[i])) fail(kEntry, static_cast<int>(i));
  }
  if (mount("tmpfs", p.staged_work.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, p.work_opts.c_str()))
    fail(kWorkMount);
  for (const auto& [path, content] : p.files) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || !write_all(fd, content) || (p.root && fchown(fd, uid, uid) != 0)) {
      fail(kFiles);
    }
    close(fd);
  }
  if (p.root && chown(p.staged_work.c_str(), uid, uid) != 0) fail(kFiles);
  for (const std::string* alias : {&p.staged_tmp, &p.staged_shm}) {
    if (mount(p.staged_work.c_str(), alias->c_str(), nullptr, MS_BIND, nullptr)) fail(kWorkMount);
  }
  if (mount(nullptr, kStage, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) != 0) {
    fail(kReadOnly);
  }
}

void set_limit(int resource, rlim_t value) {
  struct rlimit rl{value, value};
  setrlimit(resource, &rl);
}

// In the program's process: limits, user, exec. Only async-signal-safe calls.
[[noreturn]] void exec_program(const ChildPlan& p, uid_t uid) {
  setpgid(0, 0);
  const SandboxLimits& l = *p.limits;
  double cpu = l.cpu_s > 0 ? l.cpu_s : std::ceil(l.wall_s);
  set_limit(RLIMIT_CPU, static_cast<rlim_t>(cpu < 1 ? 1 : cpu));
  set_limit(RLIMIT_AS, static_cast<rlim_t>(l.memory_mb) << 20);
  set_limit(RLIMIT_FSIZE, static_cast<rlim_t>(l.file_mb) << 20);
  set_limit(RLIMIT_NOFILE, static_cast<rlim_t>(l.n_files));
  set_limit(RLIMIT_NPROC, static_cast<rlim_t>(l.n_procs));
  set_limit(RLIMIT_CORE, 0);
  if (p.root && (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0)) {
    fail(kCreds);  // never run hostile code as root
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // setuid cleared it; init's death kills the namespace anyway
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (chdir(kWork) != 0) fail(kPivot);
  if (!detail::install_seccomp_filter()) fail(kSeccomp);
  if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
    for (int fd = 3; fd < 4096; ++fd) close(fd);  // kernels before 5.9
  }
  execve(p.path.c_str(), p.argv.data(), p.envp.data());
  _exit(127);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// PID 1 of the sandbox: tied to the middle, enters the root, forks the program and reaps
// everything until the program exits; its own exit then kills whatever the program left.
[[noreturn]] void run_init(const ChildPlan& p, int middle_alive, uid_t uid) {
  // getppid() is 0 in a new PID namespace: a middle that died before PDEATHSIG was armed shows
  // as the hang-up of a pipe only it holds the write end of
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd alive{middle_alive, POLLIN, 0};
  if (poll(&alive, 1, 0) != 0) _exit(125);
  prctl(PR_SET_DUMPABLE, 0);  // its memory is a copy of aha's: no /proc/1/mem for anyone
  // a /proc of this namespace only (hidepid: not even init's entry when the program is another
  // user); mounted before the host's /proc is detached, as user namespaces require
  if (mount("proc", p.staged_proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "hidepid=2,subset=pid") != 0) {
    mount("proc", p.staged_proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  }
  if (chdir(kStage) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 ||
      umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
    fail(kPivot);
  }
  pid_t program = fork();
  if (program < 0) fail(kForkProgram);
  if (program == 0) exec_program(p, uid);
  for (int fd : {0, 1, 2}) close(fd);
  while (true) {
    int status = 0;
    pid_t w = waitpid(-1, &status, 0);
    if (w == program) _exit(exit_code_of(status));
    if (w < 0 && errno != EINTR) _exit(125);
  }
}

// Default signal handlers and an empty mask (aha's handlers must not run in init, which gets
// signals from inside its namespace only when it handles them); the four descriptors the
// children use moved to 0-3 and every other one closed (aha's database, other sandboxes' pipes).
void reset_process_state(const ChildPlan& p) {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int fds[4] = {p.stdin_fd, p.out_w, p.err_w, p.report_w};
  for (int& fd : fds) fd = fcntl(fd, F_DUPFD_CLOEXEC, 100);
  for (int i = 0; i < 4; ++i) {
    if (fds[i] < 0 || dup2(fds[i], i) != i) _exit(125);
  }
  if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0) {
    for (int fd = 4; fd < 4096; ++fd) close(fd);
  }
}

// The middle process: namespaces, the root, then init; reports init's pid, waits for it and
// reports whether the work dir filled up.
[[noreturn]] void middle(const ChildPlan& p) {
  reset_process_state(p);
  setpgid(0, 0);  // out of aha's group: a Ctrl-C aha handles (pause) must not kill the sandbox
  arm_death_signal(p.aha);
  int ns = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (!p.limits->allow_network) ns |= CLONE_NEWNET;
  if (!p.root) ns |= CLONE_NEWUSER;  // unprivileged hosts need a user namespace first
  if (unshare(ns) != 0) fail(kUnshare);
  if (!p.root && (!write_file("/proc/self/setgroups", "deny") ||
                  !write_file("/proc/self/uid_map", p.uid_map) ||
                  !write_file("/proc/self/gid_map", p.gid_map))) {
    fail(kIdMap);
  }
  arm_death_signal(p.aha);  // unshare(CLONE_NEWUSER) is a credential change
  uid_t uid = p.root ? kUidBase + static_cast<uid_t>(getpid()) % kUidRange : geteuid();
  build_root(p, uid);
  int work = open(p.staged_work.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int alive[2];
  if (work < 0 || pipe2(alive, O_CLOEXEC) != 0) fail(kForkInit);
  pid_t init = fork();
  if (init < 0) fail(kForkInit);
  if (init == 0) {
    close(alive[1]);
    run_init(p, alive[0], uid);
  }
  close(alive[0]);
  for (int fd : {0, 1, 2}) close(fd);
  Msg started{kStarted, init, 0, 0};
  if (write(kReportFd, &started, sizeof(started)) != static_cast<ssize_t>(sizeof(started))) {
    kill(init, SIGKILL);
  }
  int status = 0;
  while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
  }
  struct statfs sf;
  Msg disk{kDisk, fstatfs(work, &sf) == 0 && (sf.f_bavail == 0 || sf.f_ffree == 0), 0, 0};
  (void)!write(kReportFd, &disk, sizeof(disk));
  _exit(exit_code_of(status));
}

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

void add_entry(ChildPlan& p, RootEntry::Kind kind, const std::string& path,
               const std::string& source, bool device = false) {
  p.entries.push_back({kind, path, kStage + path, source, device});
}

// A host path as it should appear in the sandbox: a symlink stays a symlink (merged /usr)
// unless `follow` (its target may lie outside the sandbox: /etc/resolv.conf -> /run/...), a
// directory or file is bound read-only; absent paths are skipped.
void add_host_path(ChildPlan& p, const std::string& path, bool device = false,
                   bool follow = false) {
  struct stat st;
  if ((follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st)) != 0) return;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    std::string target = std::filesystem::read_symlink(path, ec).string();
    if (!ec) add_entry(p, RootEntry::Kind::kSymlink, path, target);
  } else if (S_ISDIR(st.st_mode)) {
    add_entry(p, RootEntry::Kind::kBindDir, path, path, device);
  } else {
    add_entry(p, RootEntry::Kind::kBindFile, path, path, device);
  }
}

bool visible(const ChildPlan& p, const std::string& path) {
  for (const auto& e : p.entries) {
    if (path == e.path || path.rfind(e.path + "/", 0) == 0) {
      return e.kind != RootEntry::Kind::kDir;
    }
  }
  return false;
}

// The root: the interpreter's directories, the few files of /etc the loader reads, /dev's
// harmless nodes, empty /proc (init mounts it), /tmp and /sandbox; then ro_paths.
std::string plan_root(ChildPlan& p, const SandboxLimits& l) {
  for (const char* d : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    add_host_path(p, d);
  }
  add_entry(p, RootEntry::Kind::kDir, "/etc", "");
  for (const char* f : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                        "/etc/localtime", "/etc/alternatives"}) {
    add_host_path(p, f);
  }
  if (l.allow_network) {  // name resolution and TLS for programs that may use the network
    for (const char* f : {"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
                          "/etc/gai.conf", "/etc/ssl"}) {
      add_host_path(p, f, false, true);
    }
  }
  add_entry(p, RootEntry::Kind::kDir, "/dev", "");
  for (const char* d : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}) {
    add_host_path(p, d, true);
  }
  add_entry(p, RootEntry::Kind::kSymlink, "/dev/fd", "/proc/self/fd");
  add_entry(p, RootEntry::Kind::kSymlink, "/dev/stdin", "/proc/self/fd/0");
  add_entry(p, RootEntry::Kind::kSymlink, "/dev/stdout", "/proc/self/fd/1");
  add_entry(p, RootEntry::Kind::kSymlink, "/dev/stderr", "/proc/self/fd/2");
  for (const char* d : {"/dev/shm", "/proc", "/tmp", kWork}) {
    add_entry(p, RootEntry::Kind::kDir, d, "");
  }
  for (const std::string& raw : l.ro_paths) {
    std::string path = std::filesystem::path(raw).lexically_normal().string();
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path.empty() || path[0] != '/' || path == "/" || path == "/tmp" ||
        path.rfind("/tmp/", 0) == 0 || path == kWork || path == "/proc" ||
        path.rfind("/proc/", 0) == 0) {
      return "ro_paths: " + raw + " must be absolute, not /, /proc or under /tmp";
    }
    if (visible(p, path)) continue;
    for (size_t slash = path.find('/', 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      add_entry(p, RootEntry::Kind::kDir, path.substr(0, slash), "");
    }
    add_host_path(p, path);
  }
  p.staged_work = std::string(kStage) + kWork;
  p.staged_tmp = std::string(kStage) + "/tmp";
  p.staged_shm = std::string(kStage) + "/dev/shm";
  p.staged_proc = std::string(kStage) + "/proc";
  p.work_opts = "size=" + std::to_string(l.disk_mb) + "m,nr_inodes=" +
                std::to_string(kWorkInodes) + ",mode=0700";
  return "";
}

// The files, argv and a clean environment.
std::string prepare(const std::vector<std::string>& argv,
                    const std::vector<std::pair<std::string, std::string>>& files,
                    const SandboxLimits& l, ChildPlan& p) {
  if (l.disk_mb < 1) return "disk_mb must be at least 1";
  std::string error = plan_root(p, l);
  if (!error.empty()) return error;
  for (const auto& [name, content] : files) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      return "bad file name '" + name + "'";
    }
    p.files.emplace_back(p.staged_work + "/" + name, content);
  }
  p.path = resolve(argv[0]);
  p.argv_store = argv;
  p.env_store = {"PATH=/usr/local/bin:/usr/bin:/bin", std::string("HOME=") + kWork,
                 std::string("TMPDIR=") + kWork, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
                 "PYTHONHASHSEED=0"};
  for (auto& a : p.argv_store) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : p.env_store) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  std::string me = std::to_string(geteuid()), group = std::to_string(getegid());
  p.uid_map = me + " " + me + " 1";
  p.gid_map = group + " " + group + " 1";
  return "";
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
