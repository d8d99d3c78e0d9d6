// What the sandbox lifetime tests look for on the host: processes carrying a marker, temp dirs
// a sandbox left behind, and a bounded wait. Shared by the library and CLI sandbox tests.
#pragma once

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>

namespace aha::rewards::sandbox_probe {

// Makes unshare() fail with EPERM in this process and its children, as Docker's default seccomp
// profile does for a container without CAP_SYS_ADMIN: a host where the sandbox cannot be built,
// for root and ordinary users alike. False when the kernel refuses the filter.
inline bool deny_unshare() {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog{sizeof(f) / sizeof(f[0]), f};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
}

// Host processes whose command line contains `marker` (the sandboxed program's last argument,
// inherited by everything it forks).
inline int processes_with(const std::string& marker) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e :
       fs::directory_iterator("/proc", fs::directory_options::skip_permission_denied)) {
    std::string name = e.path().filename();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    // read(2), not an ifstream: a process that exits meanwhile makes the read fail with ESRCH,
    // which libstdc++'s filebuf turns into an exception
    int fd = ::open((e.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::string cmd;
    char buf[4096];
    for (ssize_t got; (got = ::read(fd, buf, sizeof buf)) > 0;) cmd.append(buf, got);
    ::close(fd);
    if (cmd.find(marker) != std::string::npos) ++n;
  }
  return n;
}

// Temp dirs of the previous sandbox's kind (/tmp/aha-sbx-*). Other builds' sandboxes on the same
// machine may make some for a moment: only ones that appeared since `before` and stay count.
inline std::set<std::string> host_sandbox_dirs() {
  namespace fs = std::filesystem;
  std::set<std::string> dirs;
  for (const auto& e :
       fs::directory_iterator("/tmp", fs::directory_options::skip_permission_denied)) {
    std::string name = e.path().filename().string();
    if (name.rfind("aha-sbx-", 0) == 0) dirs.insert(name);
  }
  return dirs;
}

inline int new_sandbox_dirs(const std::set<std::string>& before) {
  auto count = [&] {
    int n = 0;
    for (const auto& d : host_sandbox_dirs()) n += before.count(d) == 0;
    return n;
  };
  for (int i = 0; i < 150 && count() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return count();
}

template <typename Pred>
bool wait_until(Pred pred, double limit_s) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(limit_s * 1000));
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace aha::rewards::sandbox_probe
