// Issue 16's first finding, end to end: kill `aha reward` (SIGKILL, SIGTERM, SIGINT) while the
// code reward's sandboxed program sleeps (with a daemonised child); nothing of the sandbox may
// survive and nothing may stay in /tmp. Skipped when the CLI is not built.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "aha/core/config.h"
#include "aha/rewards/sandbox.h"

namespace aha::rewards {
namespace {

namespace fs = std::filesystem;
const std::string kAha = std::string(AHA_BINARY_DIR) + "/cli/aha";

int processes_with(const std::string& marker) {
  int n = 0;
  for (const auto& e :
       fs::directory_iterator("/proc", fs::directory_options::skip_permission_denied)) {
    std::string name = e.path().filename();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(marker) != std::string::npos) ++n;
  }
  return n;
}

// Temp dirs of the previous sandbox's kind (/tmp/aha-sbx-*). Other builds' sandboxes on the same
// machine may make some for a moment: only ones that appeared since `before` and stay count.
std::set<std::string> host_sandbox_dirs() {
  std::set<std::string> dirs;
  for (const auto& e :
       fs::directory_iterator("/tmp", fs::directory_options::skip_permission_denied)) {
    std::string name = e.path().filename().string();
    if (name.rfind("aha-sbx-", 0) == 0) dirs.insert(name);
  }
  return dirs;
}

int new_sandbox_dirs(const std::set<std::string>& before) {
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
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(limit_s * 1000));
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class SandboxCli : public testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!fs::exists(kAha)) GTEST_SKIP() << "aha binary not built";
    std::string why = sandbox_unavailable_reason();
    if (why.find("unshare namespaces") != std::string::npos ||
        why.find("uid_map") != std::string::npos) {
      GTEST_SKIP() << "no sandbox for this user here: " << why;
    }
  }
};

TEST_P(SandboxCli, KillingAhaRewardKillsItsSandboxes) {
  int sig = GetParam();
  std::string marker = "aha-cli-sleeper-" + std::to_string(getpid()) + "-" + std::to_string(sig);
  // the program re-executes itself with the marker in its command line, forks a daemon, sleeps
  std::string sleeper = "import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(60)\n";
  std::string program = "import os, sys\nos.execv(sys.executable, [sys.executable, '-c', " +
                        Json(sleeper).dump() + ", " + Json(marker).dump() + "])\n";
  Json row = {{"completion", "```python\n" + program + "```"},
              {"tests", {{"inputs", {"1\n"}}, {"outputs", {"1\n"}}}}};
  // (the input's name must not hold the marker: aha's command line would match)
  std::string input = (fs::temp_directory_path() /
                       ("aha-cli-input-" + std::to_string(getpid()) + ".jsonl")).string();
  std::ofstream(input) << row.dump() << "\n";
  std::set<std::string> dirs_before = host_sandbox_dirs();
  pid_t aha = fork();
  ASSERT_GE(aha, 0);
  if (aha == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 1);
    dup2(null, 2);
    execl(kAha.c_str(), kAha.c_str(), "reward", "--reward", "code", "--params",
          R"({"code": {"timeout_s": 60}})", "--input", input.c_str(), nullptr);
    _exit(127);
  }
  bool started = wait_until([&] { return processes_with(marker) >= 2; }, 30);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(aha, sig);
  int status = 0;
  bool reaped = wait_until([&] { return waitpid(aha, &status, WNOHANG) == aha; }, 10);
  if (!reaped) {
    kill(aha, SIGKILL);
    waitpid(aha, &status, 0);
  }
  fs::remove(input);
  ASSERT_TRUE(started) << "the sleeper never ran";
  EXPECT_TRUE(reaped) << "aha did not exit on signal " << sig;
  EXPECT_TRUE(wait_until([&] { return processes_with(marker) == 0; }, 5))
      << processes_with(marker) << " sandboxed processes outlived aha";
  EXPECT_EQ(new_sandbox_dirs(dirs_before), 0);
}

INSTANTIATE_TEST_SUITE_P(Sandbox, SandboxCli, testing::Values(SIGKILL, SIGTERM, SIGINT),
                         [](const testing::TestParamInfo<int>& i) {
                           return std::string(i.param == SIGKILL   ? "SIGKILL"
                                              : i.param == SIGTERM ? "SIGTERM"
                                                                   : "SIGINT");
                         });

}  // namespace
}  // namespace aha::rewards
