// The sandbox's four promises against hostile programs (issue 16): nothing outlives aha, no host
// socket is reachable, no host file is readable, and the disk is bounded. Each test also shows
// that its check can fail (the same probe run on the host succeeds). When run as root, one more
// test runs all Sandbox* tests again as an ordinary user (uid 65534).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <iostream>
#include <thread>

#include "aha/core/error.h"
#include "aha/rewards/code.h"
#include "aha/rewards/reward.h"
#include "aha/rewards/sandbox.h"
#include "sandbox_fixture.h"
#include "sandbox_probe.h"

namespace aha::rewards {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using namespace sandbox_fixture;  // NOLINT: the shared test vocabulary
using sandbox_probe::host_sandbox_dirs;
using sandbox_probe::new_sandbox_dirs;
using sandbox_probe::processes_with;
using sandbox_probe::wait_until;

// A program that tries to outlive its sandbox: it clears its own PDEATHSIG and leaves a
// daemonised grandchild behind, then sleeps.
constexpr const char* kSleeper =
    "import ctypes, os, time\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, 0)  # PR_SET_PDEATHSIG: none\n"
    "except Exception:\n"
    "    pass\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(60)\n"
    "    os._exit(0)\n"
    "time.sleep(60)\n";

class SandboxLifetime : public testing::TestWithParam<int> {
 protected:
  void SetUp() override { skip_without_sandbox(); }
};

TEST_P(SandboxLifetime, NothingOutlivesAKilledAha) {
  int sig = GetParam();
  std::string marker = "aha-lifetime-" + std::to_string(getpid()) + "-" + std::to_string(sig);
  std::set<std::string> dirs_before = host_sandbox_dirs();
  pid_t helper = fork();  // stands for aha: it runs a sandbox and gets killed
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    run_python(kSleeper, limits(60), {marker});
    _exit(0);
  }
  bool started = wait_until([&] { return processes_with(marker) >= 2; }, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // PDEATHSIG cleared, daemon up
  kill(helper, sig);
  int status = 0;
  bool reaped = wait_until([&] { return waitpid(helper, &status, WNOHANG) == helper; }, 10);
  if (!reaped) {
    kill(helper, SIGKILL);
    waitpid(helper, &status, 0);
  }
  ASSERT_TRUE(started) << "the sleeper never ran";
  EXPECT_TRUE(reaped);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig);
  EXPECT_TRUE(wait_until([&] { return processes_with(marker) == 0; }, 5))
      << processes_with(marker) << " sandboxed processes outlived aha";
  // its files lived in a tmpfs of its own mount namespace, gone with it; the next start works
  // and leaves nothing in the host's /tmp either
  SandboxResult next = run_python("print('next')");
  EXPECT_TRUE(next.ok()) << next.status() << next.err;
  EXPECT_EQ(new_sandbox_dirs(dirs_before), 0);
}

INSTANTIATE_TEST_SUITE_P(Sandbox, SandboxLifetime, testing::Values(SIGKILL, SIGTERM, SIGINT),
                         [](const testing::TestParamInfo<int>& i) {
                           return std::string(i.param == SIGKILL   ? "SIGKILL"
                                              : i.param == SIGTERM ? "SIGTERM"
                                                                   : "SIGINT");
                         });

TEST_F(SandboxLifetime, TimeoutKillsEveryProcessOfTheSandbox) {
  std::string marker = "aha-timeout-" + std::to_string(getpid());
  auto t0 = Clock::now();
  SandboxResult r = run_python(kSleeper, limits(1.5), {marker});
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 5.0);
  EXPECT_TRUE(wait_until([&] { return processes_with(marker) == 0; }, 2));
}

// Host sockets the probe tries: a 0666 path socket, an abstract socket and TCP on loopback.
struct HostSockets {
  std::string path = "/tmp/aha-sock-" + std::to_string(getpid());
  std::string abstract = "aha-abstract-" + std::to_string(getpid());
  int port = 0;
  int fds[3] = {-1, -1, -1};

  HostSockets() {
    fs::remove(path);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::snprintf(un.sun_path, sizeof(un.sun_path), "%s", path.c_str());
    fds[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(fds[0], reinterpret_cast<sockaddr*>(&un), sizeof(un));
    chmod(path.c_str(), 0666);
    sockaddr_un ab{};
    ab.sun_family = AF_UNIX;
    std::memcpy(ab.sun_path + 1, abstract.data(), abstract.size());
    fds[1] = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(fds[1], reinterpret_cast<sockaddr*>(&ab),
         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + abstract.size()));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[2] = socket(AF_INET, SOCK_STREAM, 0);
    bind(fds[2], reinterpret_cast<sockaddr*>(&in), sizeof(in));
    socklen_t len = sizeof(in);
    getsockname(fds[2], reinterpret_cast<sockaddr*>(&in), &len);
    port = ntohs(in.sin_port);
    for (int fd : fds) listen(fd, 16);
  }
  ~HostSockets() {
    for (int fd : fds) close(fd);
    fs::remove(path);
  }
  std::string probe() const {
    return "import socket\n"
           "def attempt(name, family, addr):\n"
           "    try:\n"
           "        s = socket.socket(family, socket.SOCK_STREAM)\n"
           "        s.settimeout(1)\n"
           "        s.connect(addr)\n"
           "        print('CONNECTED', name)\n"
           "    except OSError as e:\n"
           "        print('blocked', name, e)\n"
           "attempt('path', socket.AF_UNIX, '" + path + "')\n"
           "attempt('abstract', socket.AF_UNIX, '\\0" + abstract + "')\n"
           "attempt('tcp', socket.AF_INET, ('127.0.0.1', " + std::to_string(port) + "))\n";
  }
};

TEST_F(SandboxNetwork, HostSocketsAreUnreachable) {
  HostSockets host;
  std::string on_host = run_on_host(host.probe());
  for (const char* kind : {"CONNECTED path", "CONNECTED abstract", "CONNECTED tcp"}) {
    ASSERT_NE(on_host.find(kind), std::string::npos) << "the probe itself is broken: " << on_host;
  }
  SandboxResult r = run_python(host.probe());
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out.find("CONNECTED"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("blocked"), 0u) << r.out;
  EXPECT_TRUE(r.isolation.network_isolated());
}

// Socket families no namespace confines: AF_VSOCK talks to the hypervisor and to vsock
// listeners of the host, AF_PACKET and AF_ALG are kernel surface a grader does not need.
TEST_F(SandboxNetwork, OnlyConfinedSocketFamilies) {
  std::string probe =
      "import socket\n"
      "S = socket.SOCK_STREAM\n"
      "for name, fam, kind in [('vsock', 40, S), ('packet', 17, socket.SOCK_RAW),\n"
      "                        ('alg', 38, socket.SOCK_SEQPACKET), ('unix', 1, S),\n"
      "                        ('inet', 2, S)]:\n"
      "    try:\n"
      "        socket.socket(fam, kind).close()\n"
      "        print('OPENED', name)\n"
      "    except OSError as e:\n"
      "        print('refused', name, e.errno)\n";
  std::string on_host = run_on_host(probe);
  if (on_host.find("OPENED vsock") == std::string::npos) {
    std::cerr << "(no AF_VSOCK on this host: the check proves less)\n";
  }
  SandboxResult r = run_python(probe);
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_NE(r.out.find("refused vsock 97"), std::string::npos) << r.out;  // EAFNOSUPPORT
  EXPECT_EQ(r.out.find("OPENED packet"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("OPENED alg"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OPENED unix"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OPENED inet"), std::string::npos) << r.out;
}

TEST_F(SandboxNetwork, AllowedNetworkIsNotReportedAsIsolated) {
  HostSockets host;
  SandboxLimits l = limits();
  l.allow_network = true;
  SandboxResult r = run_python(host.probe(), l);
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_FALSE(r.isolation.network_isolated());
  EXPECT_NE(r.out.find("CONNECTED tcp"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CONNECTED abstract"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("CONNECTED path"), std::string::npos) << r.out;  // still no host files
  // name resolution needs the resolver's files, and only then do they appear
  std::string resolver = "import os\nprint(os.path.exists('/etc/resolv.conf'))\n";
  bool host_has = fs::exists("/etc/resolv.conf");
  r = run_python(resolver, l);
  EXPECT_EQ(r.out, host_has ? "True\n" : "False\n") << r.err;
  r = run_python(resolver);
  EXPECT_EQ(r.out, "False\n") << r.err;
}

TEST_F(SandboxNetwork, CodeRewardDetailsSayIsolated) {
  auto set = RewardSet::from_json(Json::parse(R"([{"name": "code"}])"), builtin_registry());
  Json row = {{"tests", {{"inputs", {"1\n"}}, {"outputs", {"1\n"}}}}};
  Sample s;
  std::string completion = "```python\nprint(input())\n```";
  s.completion = completion;
  s.row = &row;
  ScoredSample got = set.score(s);
  EXPECT_EQ(got.reward, 1.0) << got.details.dump();
  EXPECT_EQ(got.details["code"]["network_isolated"], true) << got.details.dump();
}

// Files the sandbox must not read: world-readable, in the host's /tmp, the test's build dir
// and cwd; and /root, /home and the working directory must not even be listable.
TEST_F(SandboxFiles, SeesOnlyTheInterpreter) {
  std::string tag = std::to_string(getpid());
  std::vector<std::string> secrets = {"/tmp/aha-secret-" + tag,
                                      std::string(AHA_BINARY_DIR) + "/aha-secret-" + tag,
                                      fs::current_path().string() + "/aha-secret-cwd-" + tag};
  std::string program = "import os\npaths = [";
  for (const auto& p : secrets) {
    std::ofstream(p) << "SECRET_" << tag;  // (the build dir is not writable as a user: skipped)
    chmod(p.c_str(), 0644);
    program += "'" + p + "', ";
  }
  program += "'/etc/passwd', '/etc/hostname', '/proc/1/environ', '/proc/1/mem']\n"
             "for p in paths:\n"
             "    try:\n"
             "        print('READ', p, open(p, 'rb').read(64))\n"
             "    except OSError as e:\n"
             "        print('blocked', p)\n"
             "for d in ['/root', '/home', '/work', '/var', '/opt', '" +
             fs::current_path().string() + "']:\n"
             "    try:\n"
             "        print('LISTED', d, os.listdir(d)[:3])\n"
             "    except OSError:\n"
             "        print('blocked', d)\n"
             "print('ROOT', sorted(os.listdir('/')))\n"
             "print('ETC', sorted(os.listdir('/etc')))\n";
  std::string on_host = run_on_host(program);
  ASSERT_NE(on_host.find("READ /tmp/aha-secret-"), std::string::npos) << on_host;
  SandboxResult r = run_python(program);
  for (const auto& p : secrets) fs::remove(p);
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out.find("READ"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("LISTED"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("SECRET_"), std::string::npos) << r.out;
  size_t root_at = r.out.find("ROOT ");
  ASSERT_NE(root_at, std::string::npos) << r.out;
  std::string root = r.out.substr(root_at, r.out.find('\n', root_at) - root_at);
  for (const char* host_only : {"'root'", "'home'", "'work'", "'var'", "'opt'", "'run'"}) {
    EXPECT_EQ(root.find(host_only), std::string::npos) << root;
  }
  EXPECT_TRUE(r.isolation.mount_ns);
}

// The host's mount table names its devices and paths (/dev/vda, an overlay's lowerdir=/var/lib/
// ...). A bind mount keeps its source's name, so any /proc of the sandbox's mount namespace
// would show them for /usr and the other binds: the sandbox has no /proc at all.
TEST_F(SandboxFiles, MountTableRevealsNoHostSource) {
  std::set<std::string> host_sources;  // mount sources and option values that are host paths
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type, source, options;
    rest >> type >> source >> options;
    if (source.size() > 1 && source[0] == '/') host_sources.insert(source);
    for (size_t at = options.find("=/"); at != std::string::npos; at = options.find("=/", at + 1)) {
      std::string value = options.substr(at + 1, options.find_first_of(",:", at + 1) - at - 1);
      if (value.size() > 4) host_sources.insert(value);
    }
  }
  std::string program =
      "import os\n"
      "for p in ['/proc/self/mountinfo', '/proc/self/mounts', '/proc/mounts', '/etc/mtab',\n"
      "          '/proc/self/mountstats', '/proc/1/mountinfo', '/proc/thread-self/mountinfo']:\n"
      "    try:\n"
      "        print('READ', p, open(p).read())\n"
      "    except OSError:\n"
      "        print('blocked', p)\n"
      "print('dev', sorted(os.listdir('/dev')))\n";
  std::string on_host = run_on_host(program);
  ASSERT_NE(on_host.find("READ /proc/self/mountinfo"), std::string::npos) << on_host;
  SandboxResult r = run_python(program);
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out.find("READ"), std::string::npos) << r.out;
  for (const std::string& source : host_sources) {
    EXPECT_EQ(r.out.find(source), std::string::npos) << source << " in\n" << r.out;
  }
  // and the program still has what it needs: stdin on fd 0, /dev/null, a writable cwd
  r = run_sandboxed({"python3", "-I", "-B", "-c",
                     "import sys, os; print(sys.stdin.read().upper(), open(0).read() == '', "
                     "open('/dev/null').read() == '', os.getcwd())"},
                    {}, "abc", limits());
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out, "ABC True True /sandbox\n");
}

TEST_F(SandboxFiles, RoPathsAreReadableButNotWritable) {
  std::string dir = "/var/tmp/aha-ro-" + std::to_string(getpid());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) GTEST_SKIP() << "cannot create " << dir;
  std::ofstream(dir + "/data.txt") << "visible";
  chmod(dir.c_str(), 0755);
  chmod((dir + "/data.txt").c_str(), 0644);
  SandboxLimits l = limits();
  l.ro_paths = {dir};
  SandboxResult r = run_python(
      "print(open('" + dir + "/data.txt').read())\n"
      "try:\n"
      "    open('" + dir + "/new.txt', 'w').write('x')\n"
      "    print('WROTE')\n"
      "except OSError:\n"
      "    print('blocked')\n",
      l);
  EXPECT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out, "visible\nblocked\n");
  EXPECT_FALSE(fs::exists(dir + "/new.txt"));
  fs::remove_all(dir, ec);
  l.ro_paths = {"/tmp/x"};  // hidden by the staging mount: refused, not silently empty
  r = run_python("print(1)", l);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("ro_paths"), std::string::npos) << r.status();
}

// Every Sandbox* test again as an ordinary user (the user-namespace path of the sandbox).
TEST(SandboxAsUser, AllSandboxTestsPassAsUid65534) {
  if (geteuid() != 0) GTEST_SKIP() << "already an ordinary user";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv to drop privileges";
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::string cmd = "(cd /var/tmp || cd /) && "
                    "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups " +
                    self + " --gtest_filter='Sandbox*:Code*:-SandboxAsUser.*' 2>&1";
  std::string out;
  int rc = -1;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof(buf), f)) out.append(buf, n);
    rc = pclose(f);
  }
  if (out.find("sandbox error: unshare namespaces") != std::string::npos) {
    GTEST_SKIP() << "this kernel gives ordinary users no user namespaces:\n" << out;
  }
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("[  PASSED  ]"), std::string::npos) << out;
}

}  // namespace
}  // namespace aha::rewards
