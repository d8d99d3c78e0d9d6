// What the three parts of the sandbox share (internal to rewards/src/sandbox*.cpp): the plan
// made in aha before fork (sandbox_root.cpp plans the root), the processes after fork
// (sandbox_child.cpp: middle, init, program) and the report they send back to aha
// (sandbox.cpp supervises and reads it).
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aha/rewards/sandbox.h"

namespace aha::rewards::sandbox_detail {

// Where the middle builds the root, inside its own mount namespace (the host's /tmp is hidden
// there, which is why ro_paths may not lie under it).
constexpr const char* kStage = "/tmp";
constexpr const char* kWork = "/sandbox";  // the program's cwd, HOME and TMPDIR
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
  std::string staged_work, staged_tmp, staged_shm, work_opts;
  std::vector<std::pair<std::string, std::string>> files;  // staged path, content
  std::string path, uid_map, gid_map;
  std::vector<std::string> argv_store, env_store;
  std::vector<char*> argv, envp;
  int stdin_fd = -1, out_w = -1, err_w = -1, report_w = -1;
  const SandboxLimits* limits = nullptr;
  bool root = false;
  pid_t aha = 0;
};

// sandbox_root.cpp: the root, argv, files and environment of `p` ("" or what is wrong) ...
std::string prepare(const std::vector<std::string>& argv,
                    const std::vector<std::pair<std::string, std::string>>& files,
                    const SandboxLimits& l, ChildPlan& p);
// ... and, in the middle after unshare, that root built under kStage (fails the stage).
void build_root(const ChildPlan& p, uid_t uid);

// sandbox_child.cpp: the forked middle process; never returns.
[[noreturn]] void middle(const ChildPlan& p);
// Reports a failed setup stage (with errno) on kReportFd and exits 125.
[[noreturn]] void fail(Stage stage, int entry = -1);

// Shared by both sides: a write that retries short writes and EINTR; a wait status as a shell
// shows it (the code, or 128 + the signal).
bool write_all(int fd, std::string_view data);
inline int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace aha::rewards::sandbox_detail
