// A process sandbox for untrusted programs: its own process group (and PID, network and mount
// namespaces when the kernel allows), rlimits, a wall-clock kill of the whole group, a private
// temp dir, a read-only view of the rest of the file system, an unprivileged user of its own
// when started as root, and capped output. Thread-safe: each call is independent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aha::rewards {

struct SandboxLimits {
  double wall_s = 5.0;              // wall clock, then SIGKILL to the whole group
  double cpu_s = 0;                 // RLIMIT_CPU; 0: ceil(wall_s)
  int64_t memory_mb = 1024;         // RLIMIT_AS
  int64_t file_mb = 16;             // RLIMIT_FSIZE
  int n_files = 64;                 // RLIMIT_NOFILE
  int n_procs = 128;                // RLIMIT_NPROC (per user: shared by concurrent sandboxes)
  int64_t output_bytes = 1 << 20;   // stdout and stderr each; past it the group is killed
  bool allow_network = false;       // true: keep the host network namespace
};

// Which isolation layers were in force (they are best effort: a kernel may refuse some).
struct SandboxIsolation {
  bool net_ns = false;    // no network: fresh network namespace (only a downed loopback)
  bool mount_ns = false;  // read-only root, private /dev/shm, writable temp dir only
  bool pid_ns = false;    // cannot see or signal host processes
  bool unprivileged = false;  // ran as a uid/gid of its own >= 2000000 (host was root)
};

struct SandboxResult {
  int exit_code = -1;          // when it exited
  int signal = 0;              // when a signal killed it
  bool timed_out = false;
  bool output_truncated = false;
  std::string out;
  std::string err;
  double wall_s = 0;
  std::string error;           // the sandbox itself failed (e.g. exec failed)
  SandboxIsolation isolation;
  bool ok() const {
    return error.empty() && !timed_out && !output_truncated && signal == 0 && exit_code == 0;
  }
  // "exit 1", "signal 9", "timeout", "output limit" or "ok"
  std::string status() const;
};

// Runs argv (argv[0] looked up in /usr/local/bin:/usr/bin:/bin unless it has a '/') in a fresh
// private directory holding `files` (name -> content), with `input` on stdin.
SandboxResult run_sandboxed(const std::vector<std::string>& argv,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            std::string_view input, const SandboxLimits& limits);

}  // namespace aha::rewards
