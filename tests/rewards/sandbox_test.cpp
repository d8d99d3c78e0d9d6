// The code sandbox against hostile programs: each must score 0 (or be contained) and leave the
// host unharmed. Also the ordinary paths: stdin/stdout, function-call and HumanEval tests.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "aha/rewards/code.h"
#include "aha/rewards/sandbox.h"
#include "sandbox_fixture.h"

namespace aha::rewards {
namespace {

// Legitimate programs get a generous deadline (loaded CI machines); the hostile tests that
// wait for the deadline ask for a short one.
SandboxLimits fast_limits(double wall_s = 10.0) {
  SandboxLimits l;
  l.wall_s = wall_s;
  l.memory_mb = 512;
  l.output_bytes = 1 << 16;
  return l;
}

SandboxResult run_python(const std::string& program, const std::string& input = "",
                         SandboxLimits limits = fast_limits()) {
  return run_sandboxed({"python3", "-I", "-B", "main.py"}, {{"main.py", program}}, input, limits);
}

// Processes on the host owned by sandbox users (only meaningful when tests run as root).
int sandbox_user_processes() {
  int n = 0;
  DIR* d = opendir("/proc");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    struct stat st;
    std::string path = std::string("/proc/") + e->d_name;
    if (stat(path.c_str(), &st) == 0 && st.st_uid >= 2000000 && st.st_uid < 3000000) ++n;
  }
  closedir(d);
  return n;
}

void expect_no_stragglers() {
  if (geteuid() != 0) return;
  for (int i = 0; i < 50 && sandbox_user_processes() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(sandbox_user_processes(), 0);
}

// The host still runs programs normally after a hostile one.
void expect_host_healthy() {
  SandboxResult r = run_python("print(input()[::-1])", "abc\n");
  EXPECT_TRUE(r.ok()) << r.status() << " " << r.err;
  EXPECT_EQ(r.out, "cba\n");
}

using sandbox_fixture::skip_without_sandbox;

class Sandbox : public testing::Test {
 protected:
  void SetUp() override { skip_without_sandbox(); }
};
using SandboxHostile = Sandbox;
using CodeTests = Sandbox;

TEST_F(Sandbox, RunsAProgramWithStdin) {
  SandboxResult r = run_python("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))",
                               "1 2 3\n");
  ASSERT_TRUE(r.ok()) << r.status() << " " << r.err;
  EXPECT_EQ(r.out, "6\n");
  EXPECT_TRUE(r.isolation.net_ns || geteuid() != 0);
}

TEST_F(Sandbox, ReportsExitCodesAndExceptions) {
  SandboxResult r = run_python("import sys\nsys.exit(3)");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.ok());
  r = run_python("raise ValueError('boom')");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ValueError"), std::string::npos);
}

TEST_F(SandboxHostile, InfiniteLoopIsKilledAtTheDeadline) {
  auto t0 = std::chrono::steady_clock::now();
  SandboxResult r = run_python("while True:\n    pass\n", "", fast_limits(1.5));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.timed_out || r.signal != 0) << r.status();
  EXPECT_LT(s, 3.0);
  expect_no_stragglers();
}

TEST_F(SandboxHostile, SleepingPastTheLimitTimesOut) {
  auto t0 = std::chrono::steady_clock::now();
  SandboxResult r = run_python("import time\ntime.sleep(60)\nprint('late')", "", fast_limits(1.5));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.out.find("late"), std::string::npos);
  EXPECT_LT(s, 3.0);
}

TEST_F(SandboxHostile, ForkBombIsContained) {
  auto t0 = std::chrono::steady_clock::now();
  SandboxResult r = run_python(
      "import os\n"
      "while True:\n"
      "    try:\n"
      "        os.fork()\n"
      "    except OSError:\n"
      "        pass\n",
      "", fast_limits(1.5));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(r.ok());
  EXPECT_LT(s, 4.0);
  expect_no_stragglers();
  expect_host_healthy();
}

TEST_F(SandboxHostile, ForkBombDoesNotStarveAConcurrentSandbox) {
  SandboxResult bomb;
  std::thread t([&] {
    bomb = run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                      "        pass\n",
                      "", fast_limits(1.5));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the bomb is going
  SandboxResult r = run_python(
      "import subprocess, sys\n"
      "print(subprocess.run([sys.executable, '-c', 'print(7)'], capture_output=True,"
      " text=True).stdout.strip())\n");
  t.join();
  EXPECT_TRUE(r.ok()) << r.status() << " " << r.err;
  EXPECT_EQ(r.out, "7\n");
  EXPECT_FALSE(bomb.ok());
  expect_no_stragglers();
}

TEST_F(SandboxHostile, DaemonizedChildIsKilledToo) {
  SandboxResult r = run_python(
      "import os, time\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    time.sleep(30)\n"
      "print('parent done')\n");
  EXPECT_TRUE(r.ok()) << r.status();
  expect_no_stragglers();
}

TEST_F(SandboxHostile, MemoryBlowUpFails) {
  // one huge allocation: refused at once by RLIMIT_AS
  SandboxResult r = run_python("x = bytearray(1 << 34)\nprint('allocated')\n");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.err.find("MemoryError"), std::string::npos) << r.err;
  // steady growth: stopped by the address-space limit or the deadline, never the host
  auto t0 = std::chrono::steady_clock::now();
  r = run_python("x = []\nwhile True:\n    x.append(bytearray(64 << 20))\n", "", fast_limits(1.5));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(r.ok());
  EXPECT_LT(s, 3.0);
  expect_no_stragglers();
  expect_host_healthy();
}

TEST_F(SandboxHostile, OutputFloodIsCapped) {
  SandboxLimits l = fast_limits();
  SandboxResult r = run_python("while True:\n    print('x' * 10000)\n", "", l);
  EXPECT_TRUE(r.output_truncated);
  EXPECT_FALSE(r.ok());
  EXPECT_LE(r.out.size(), static_cast<size_t>(l.output_bytes));
}

TEST_F(SandboxHostile, CannotWriteOutsideItsTempDir) {
  // the sandbox's /tmp is its own work dir: a write there must not reach the host's /tmp
  std::string host_tmp = "/tmp/aha_sandbox_escape_" + std::to_string(getpid());
  std::string in_source = std::string(AHA_BINARY_DIR) + "/aha_sandbox_escape";
  std::filesystem::remove(host_tmp);
  std::filesystem::remove(in_source);
  SandboxResult r = run_python(
      "import os\n"
      "for p in ['" + in_source + "', '/etc/aha_escape', '/aha_escape', '/usr/aha_escape',\n"
      "          '/dev/aha_escape', '/proc/aha_escape']:\n"
      "    try:\n"
      "        open(p, 'w').write('pwned')\n"
      "        print('WROTE', p)\n"
      "    except OSError as e:\n"
      "        print('blocked', p)\n"
      "open('" + host_tmp + "', 'w').write('own tmp')\n"
      "open('inside.txt', 'w').write('fine')\n"
      "print(open('inside.txt').read())\n");
  EXPECT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out.find("WROTE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fine"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(host_tmp));
  EXPECT_FALSE(std::filesystem::exists(in_source));
  EXPECT_FALSE(std::filesystem::exists("/etc/aha_escape"));
  EXPECT_FALSE(std::filesystem::exists("/aha_escape"));
}

TEST_F(SandboxHostile, CannotKillTheParent) {
  std::string me = std::to_string(getpid());
  SandboxResult r = run_python(
      "import os, signal\n"
      "for f in [lambda: os.kill(" + me + ", 9), lambda: os.killpg(os.getpgid(" + me + "), 9),\n"
      "          lambda: os.kill(os.getppid(), 9), lambda: os.kill(-1, 9)]:\n"
      "    try:\n"
      "        f()\n"
      "    except Exception as e:\n"
      "        print('refused', type(e).__name__)\n");
  // still here: the kill attempts reached nothing of ours
  EXPECT_FALSE(r.timed_out);
  expect_host_healthy();
}

TEST_F(SandboxHostile, CannotSeeHostProcesses) {
  std::string me = std::to_string(getpid());
  SandboxResult r = run_python(
      "import os\n"
      "procs = os.listdir('/proc') if os.path.isdir('/proc') else []\n"
      "print(os.path.exists('/proc/" + me + "'), len([p for p in procs if p.isdigit()]))\n");
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  if (!r.isolation.pid_ns || !r.isolation.mount_ns) GTEST_SKIP() << "kernel refused namespaces";
  EXPECT_EQ(r.out.substr(0, 5), "False") << r.out;  // our pid is not there
}

TEST_F(SandboxHostile, HasNoNetwork) {
  int server = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(server, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(server, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string port = std::to_string(ntohs(addr.sin_port));
  std::string program =
      "import socket\n"
      "try:\n"
      "    socket.create_connection(('127.0.0.1', " + port + "), timeout=0.5)\n"
      "    print('CONNECTED')\n"
      "except OSError as e:\n"
      "    print('blocked', e)\n";
  SandboxResult r = run_python(program);
  if (!r.isolation.net_ns) GTEST_SKIP() << "kernel refused a network namespace";
  EXPECT_EQ(r.out.find("CONNECTED"), std::string::npos) << r.out;
  // the same program with the network allowed does connect: the check can fail
  SandboxLimits open = fast_limits();
  open.allow_network = true;
  SandboxResult r2 = run_python(program, "", open);
  EXPECT_NE(r2.out.find("CONNECTED"), std::string::npos) << r2.out << r2.err;
  close(server);
}

TEST_F(SandboxHostile, CannotReadOtherTestsExpectedOutputs) {
  // Each test's expected output stays in the host; the program hunts for it everywhere it can.
  std::string me = std::to_string(getpid());
  std::string program =
      "import glob, os, sys\n"
      "data = sys.stdin.read()\n"
      "found = ''\n"
      "paths = glob.glob('/tmp/aha-sbx-*/*') + glob.glob('../*/*') + glob.glob('*')\n"
      "paths += ['/proc/" + me + "/cmdline', '/proc/" + me + "/environ', '/proc/" + me + "/mem']\n"
      "for p in paths:\n"
      "    try:\n"
      "        t = open(p, 'rb').read(1 << 20).decode('latin-1')\n"
      "    except Exception:\n"
      "        continue\n"
      "    i = t.find('SECRET_')\n"
      "    if i >= 0:\n"
      "        found = t[i:i + 12]\n"
      "print(found)\n";
  Json tests = {{"inputs", {"1\n", "2\n", "3\n"}},
                {"outputs", {"SECRET_00001", "SECRET_00002", "SECRET_00003"}}};
  CodeOptions o;
  o.limits = fast_limits();
  o.max_parallel = 3;
  CodeResult r = run_io_tests(program, tests, o);
  EXPECT_EQ(r.n_tests, 3);
  EXPECT_EQ(r.n_passed, 0);
  EXPECT_EQ(r.score, 0.0);
}

TEST_F(CodeTests, StdinStdoutPassFractionAndAllOrNothing) {
  Json tests = {{"inputs", {"1 2\n", "3 4\n", "10 20\n"}}, {"outputs", {"3\n", "7\n", "31\n"}}};
  CodeOptions o;
  o.limits = fast_limits();
  CodeResult r = run_io_tests("a, b = map(int, input().split())\nprint(a + b)\n", tests, o);
  EXPECT_EQ(r.n_passed, 2);
  EXPECT_NEAR(r.score, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(r.tests[2].status, "wrong answer");
  o.all_or_nothing = true;
  r = run_io_tests("a, b = map(int, input().split())\nprint(a + b)\n", tests, o);
  EXPECT_EQ(r.score, 0.0);
}

TEST_F(CodeTests, FunctionCallTests) {
  Json tests = {{"fn_name", "add"},
                {"inputs", {{1, 2}, {0.5, 0.25}, {"a", "b"}}},
                {"outputs", {{3}, 0.75, "ab"}}};
  CodeOptions o;
  o.limits = fast_limits();
  CodeResult r = run_io_tests("def add(a, b):\n    return a + b\n", tests, o);
  EXPECT_EQ(r.n_passed, 3) << r.tests[0].status << r.tests[1].status << r.tests[2].status;
  r = run_io_tests("class Solution:\n    def add(self, a, b):\n        return a + b\n", tests, o);
  EXPECT_EQ(r.n_passed, 3);
  r = run_io_tests("def add(a, b):\n    return a - b\n", tests, o);
  EXPECT_EQ(r.n_passed, 0);
}

TEST_F(CodeTests, HumanEvalProgram) {
  std::string prompt = "def inc(x):\n    \"\"\"Adds one.\"\"\"\n";
  std::string test = "def check(f):\n    assert f(1) == 2\n    assert f(-1) == 0\n";
  CodeOptions o;
  o.limits = fast_limits();
  auto good = run_test_program(humaneval_program(prompt, "    return x + 1\n", test, "inc"), o);
  EXPECT_EQ(good.score, 1.0) << good.tests[0].status;
  auto bad = run_test_program(humaneval_program(prompt, "    return x + 2\n", test, "inc"), o);
  EXPECT_EQ(bad.score, 0.0);
  // a completion that restates the whole function replaces the prompt
  auto full = run_test_program(
      humaneval_program(prompt, "def inc(x):\n    return 1 + x\n", test, "inc"), o);
  EXPECT_EQ(full.score, 1.0);
}

TEST_F(CodeTests, ExtractsTheLastFencedBlock) {
  EXPECT_EQ(extract_code("text\n```python\nprint(1)\n```\nmore\n```py\nprint(2)\n```\n"),
            "print(2)\n");
  EXPECT_EQ(extract_code("<think>```python\nbad\n```</think>\nprint(3)"), "print(3)");
  EXPECT_EQ(extract_code("print(4)"), "print(4)");
  EXPECT_EQ(extract_code("\n    return x + 1\n\n"), "    return x + 1");
}

TEST_F(CodeTests, OutputsMatchIgnoresTrailingSpaceAndToleratesFloats) {
  EXPECT_TRUE(outputs_match("1 2 \n3\n\n", "1 2\n3", 1e-6));
  EXPECT_TRUE(outputs_match("0.3333333", "0.33333333", 1e-6));
  EXPECT_FALSE(outputs_match("0.33", "0.34", 1e-6));
  EXPECT_FALSE(outputs_match("1 2", "1 2 3", 1e-6));
  EXPECT_FALSE(outputs_match("YES", "NO", 1e-6));
}

}  // namespace
}  // namespace aha::rewards
