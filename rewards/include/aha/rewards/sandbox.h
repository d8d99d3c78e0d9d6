// A process sandbox for untrusted programs. Each run gets fresh mount, PID, network, IPC and
// UTS namespaces (and a user namespace when aha is not root); a root of its own: a tmpfs holding
// read-only binds of only the interpreter's directories (/usr, /bin, /lib*, a few files of
// /etc, /dev/null and friends) and a size-limited tmpfs work dir; rlimits; a wall-clock kill;
// an unprivileged uid of its own when aha is root; capped output. Nothing of a sandbox outlives
// the aha thread that started it. Thread-safe: each call is independent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aha::rewards {

struct SandboxLimits {
  double wall_s = 5.0;              // wall clock, then SIGKILL to the whole sandbox
  double cpu_s = 0;                 // RLIMIT_CPU; 0: ceil(wall_s)
  int64_t memory_mb = 1024;         // RLIMIT_AS
  int64_t file_mb = 16;             // RLIMIT_FSIZE
  int64_t disk_mb = 64;             // size of the work dir (a tmpfs): everything it may write
  int n_files = 64;                 // RLIMIT_NOFILE
  int n_procs = 128;                // RLIMIT_NPROC (per user: shared by concurrent sandboxes)
  int64_t output_bytes = 1 << 20;   // stdout and stderr each; past it the sandbox is killed
  bool allow_network = false;       // true: keep the host network namespace
  // Extra host paths the program may read (an interpreter outside /usr, say /opt/venv).
  // Absolute, not under /tmp (the staging mount point), bound read-only at the same path.
  std::vector<std::string> ro_paths;
};

// Which isolation layers were in force. A run either gets all of the namespace layers or does
// not run at all (SandboxResult::error says why); the struct says so for reports.
struct SandboxIsolation {
  bool net_ns = false;        // fresh network namespace: no TCP/UDP or abstract UNIX sockets
  bool mount_ns = false;      // a root of its own: only the interpreter's paths, read-only
  bool pid_ns = false;        // cannot see or signal host processes; dies with its init
  bool unprivileged = false;  // ran as a uid/gid of its own >= 2000000 (host was root)
  bool disk_quota = false;    // the work dir is a tmpfs of disk_mb
  // No socket of the host is reachable: TCP and abstract sockets need the network namespace,
  // path sockets (a 0666 socket under /tmp) the private root.
  bool network_isolated() const { return net_ns && mount_ns; }
};

struct SandboxResult {
  int exit_code = -1;          // when it exited
  int signal = 0;              // when a signal killed it
  bool timed_out = false;
  bool output_truncated = false;
  bool disk_full = false;      // the work dir reached disk_mb (or its file count limit)
  std::string out;
  std::string err;
  double wall_s = 0;
  std::string error;           // the sandbox itself failed (exec, or isolation unavailable)
  SandboxIsolation isolation;
  bool ok() const {
    return error.empty() && !timed_out && !output_truncated && !disk_full && signal == 0 &&
           exit_code == 0;
  }
  // "exit 1", "signal 9", "timeout", "output limit", "disk quota exceeded", "ok" or
  // "sandbox error: ..."
  std::string status() const;
};

// Runs argv (argv[0] looked up in /usr/local/bin:/usr/bin:/bin unless it has a '/') with cwd,
// HOME and TMPDIR a fresh private dir (/sandbox, also mounted at /tmp and /dev/shm) holding
// `files` (name -> content), with `input` on stdin.
SandboxResult run_sandboxed(const std::vector<std::string>& argv,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            std::string_view input, const SandboxLimits& limits);

// Whether this kernel lets aha build the sandbox ("" when it does, else what failed), by
// running `true` in it (a few tens of ms: call it once, when a code reward is built).
std::string sandbox_unavailable_reason();

}  // namespace aha::rewards
