// The sandbox's processes after fork (internal): the middle (namespaces, the root, then init),
// init (PID 1 of the new PID namespace: pivots into the root, forks the program, reaps) and the
// program (rlimits, an unprivileged user, seccomp, exec). Only async-signal-safe calls here:
// aha is multi-threaded. Whatever kills aha: the kernel kills the middle (PDEATHSIG), its death
// kills init (PDEATHSIG), and init's death kills every process of the namespace. Middle and
// init never change credentials after arming PDEATHSIG (a credential change clears it), and the
// program cannot undo it: init ignores signals from inside its namespace and is root, or holds
// capabilities the program lacks, so the program cannot ptrace it either.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "sandbox_internal.h"
#include "sandbox_seccomp.h"

namespace aha::rewards::sandbox_detail {
namespace {

// Sandboxed programs run as uid/gid kUidBase + (pid % kUidRange): a user of their own, so
// that RLIMIT_NPROC (counted per user) of one sandbox cannot starve a concurrent one.
constexpr uid_t kUidBase = 2000000;
constexpr uid_t kUidRange = 1000000;

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

// PID 1 of the sandbox: tied to the middle, enters the root, forks the program and reaps
// everything until the program exits; its own exit then kills whatever the program left.
[[noreturn]] void run_init(const ChildPlan& p, int middle_alive, uid_t uid) {
  // getppid() is 0 in a new PID namespace: a middle that died before PDEATHSIG was armed shows
  // as the hang-up of a pipe only it holds the write end of
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd alive{middle_alive, POLLIN, 0};
  if (poll(&alive, 1, 0) != 0) _exit(125);
  prctl(PR_SET_DUMPABLE, 0);  // its memory is a copy of aha's: nobody may ptrace it
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

}  // namespace

[[noreturn]] void fail(Stage stage, int entry) {
  Msg m{kFailed, stage, errno, entry};
  (void)!write(kReportFd, &m, sizeof(m));
  _exit(125);
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

}  // namespace aha::rewards::sandbox_detail
