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
#include "sandbox_probe.h"

namespace aha::rewards {
namespace {

namespace fs = std::filesystem;
const std::string kAha = std::string(AHA_BINARY_DIR) + "/cli/aha";

using sandbox_probe::host_sandbox_dirs;
using sandbox_probe::new_sandbox_dirs;
using sandbox_probe::processes_with;
using sandbox_probe::wait_until;

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

// Where namespaces cannot be made (a container whose seccomp profile refuses unshare), a run
// with the code reward ends before any grading with one `error:` line that says what is missing
// and how to fix it.
TEST(SandboxCliUnavailable, OneErrorLineSaysWhatIsMissingAndHowToFix) {
  if (!fs::exists(kAha)) GTEST_SKIP() << "aha binary not built";
  std::string input = (fs::temp_directory_path() /
                       ("aha-cli-unavailable-" + std::to_string(getpid()) + ".jsonl")).string();
  Json row = {{"completion", "```python\nprint(1)\n```"},
              {"tests", {{"inputs", {"1\n"}}, {"outputs", {"1\n"}}}}};
  std::ofstream(input) << row.dump() << "\n";
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  pid_t aha = fork();
  ASSERT_GE(aha, 0);
  if (aha == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 1);
    dup2(err[1], 2);
    if (!sandbox_probe::deny_unshare()) _exit(126);
    execl(kAha.c_str(), kAha.c_str(), "reward", "--reward", "code", "--input", input.c_str(),
          nullptr);
    _exit(127);
  }
  close(err[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(err[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  close(err[0]);
  int status = 0;
  waitpid(aha, &status, 0);
  fs::remove(input);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << text;
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "more than one line:\n" << text;
  EXPECT_EQ(text.rfind("error: the code reward needs its sandbox, which cannot run here", 0), 0u)
      << text;
  EXPECT_NE(text.find("unshare namespaces: Operation not permitted"), std::string::npos) << text;
  const char* fix = geteuid() == 0 ? "--cap-add SYS_ADMIN" : "user.max_user_namespaces";
  EXPECT_NE(text.find(fix), std::string::npos) << text;
  EXPECT_EQ(text.find('['), std::string::npos) << "an internal tag reached the user: " << text;
}

INSTANTIATE_TEST_SUITE_P(Sandbox, SandboxCli, testing::Values(SIGKILL, SIGTERM, SIGINT),
                         [](const testing::TestParamInfo<int>& i) {
                           return std::string(i.param == SIGKILL   ? "SIGKILL"
                                              : i.param == SIGTERM ? "SIGTERM"
                                                                   : "SIGINT");
                         });

}  // namespace
}  // namespace aha::rewards
