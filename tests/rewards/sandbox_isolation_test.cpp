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
#include "sandbox_probe.h"

namespace aha::rewards {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

SandboxLimits limits(double wall_s = 10.0) {
  SandboxLimits l;
  l.wall_s = wall_s;
  l.memory_mb = 512;
  l.output_bytes = 1 << 16;
  return l;
}

SandboxResult run_python(const std::string& program, SandboxLimits l = limits(),
                         const std::vector<std::string>& extra_args = {}) {
  std::vector<std::string> argv{"python3", "-I", "-B", "main.py"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return run_sandboxed(argv, {{"main.py", program}}, "", l);
}

// The same probe without a sandbox: what the test would see if the sandbox let it through.
std::string run_on_host(const std::string& program) {
  std::string path = "/tmp/aha-host-probe-" + std::to_string(getpid()) + ".py";
  std::ofstream(path) << program;
  std::string out;
  if (FILE* f = popen(("/usr/bin/python3 -I -B " + path + " 2>&1").c_str(), "r")) {
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof(buf), f)) out.append(buf, n);
    pclose(f);
  }
  fs::remove(path);
  return out;
}

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

// Without the privilege to make namespaces (an ordinary user without user namespaces, a
// container's root without CAP_SYS_ADMIN) there is no sandbox: skip, saying so. Any other
// failure to build one is a test failure.
void skip_without_sandbox() {
  static const std::string why = sandbox_unavailable_reason();
  if (why.find("unshare namespaces") != std::string::npos ||
      why.find("uid_map") != std::string::npos) {
    GTEST_SKIP() << "no sandbox for this user here: " << why;
  }
}

class SandboxTest : public testing::Test {
 protected:
  void SetUp() override { skip_without_sandbox(); }
};
using SandboxNetwork = SandboxTest;
using SandboxFiles = SandboxTest;
using SandboxDisk = SandboxTest;

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

// A program that writes 1 MB chunks into as many files as it can (RLIMIT_FSIZE is per file).
constexpr const char* kDiskFiller =
    "import os\n"
    "total = 0\n"
    "try:\n"
    "    for i in range(1000):\n"
    "        with open(('/tmp/' if i % 2 else '') + f'big{i}', 'wb') as f:\n"
    "            for _ in range(4):\n"
    "                f.write(b'x' * (1 << 20))\n"
    "                f.flush()\n"
    "                total += 1\n"
    "except OSError as e:\n"
    "    print('stopped', e.errno)\n"
    "print('MB', total)\n";

TEST_F(SandboxDisk, QuotaStopsAWriterWithAClearStatus) {
  SandboxLimits l = limits();
  l.disk_mb = 8;
  std::set<std::string> dirs_before = host_sandbox_dirs();
  SandboxResult r = run_python(kDiskFiller, l);
  EXPECT_TRUE(r.disk_full) << r.out << r.err;
  EXPECT_EQ(r.status(), "disk quota exceeded");
  EXPECT_FALSE(r.ok());
  size_t at = r.out.find("MB ");
  ASSERT_NE(at, std::string::npos) << r.out << r.err;
  EXPECT_LE(std::stoi(r.out.substr(at + 3)), 8) << r.out;
  EXPECT_NE(r.out.find("stopped 28"), std::string::npos) << r.out;  // ENOSPC
  EXPECT_EQ(new_sandbox_dirs(dirs_before), 0);
  // many empty files: the inode limit holds too
  r = run_python("import os\ntry:\n    for i in range(100000):\n"
                 "        open(f'f{i}', 'w').close()\n"
                 "except OSError as e:\n    print('stopped', e.errno)\n",
                 l);
  EXPECT_TRUE(r.disk_full) << r.out << r.err;
  // a program within its quota is fine, and the default quota is 64 MB
  EXPECT_EQ(SandboxLimits{}.disk_mb, 64);
  r = run_python("open('small', 'wb').write(b'x' * 1000)\nprint('ok')\n", l);
  EXPECT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_FALSE(r.disk_full);
}

// A user namespace of its own would let a program mount a tmpfs of any size (outside its quota)
// and reach more of the kernel: the seccomp filter refuses namespaces and mounts.
TEST_F(SandboxDisk, NoNamespacesOrMountsOfItsOwn) {
  std::string probe =
      "import ctypes, os\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "print('unshare', libc.unshare(0x10000000 | 0x00020000))\n"  // CLONE_NEWUSER | NEWNS
      "print('mount', libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, b'size=512m'))\n"
      "pid = os.fork()\n"  // plain fork still works
      "if pid == 0:\n"
      "    os._exit(7)\n"
      "print('child', os.waitpid(pid, 0)[1] >> 8)\n";
  std::string on_host = run_on_host(probe);
  if (on_host.find("unshare 0") == std::string::npos) {
    std::cerr << "(this user cannot unshare on the host either: the check proves less)\n";
  }
  SandboxResult r = run_python(probe);
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out, "unshare -1\nmount -1\nchild 7\n");
}

// A System V segment keeps its pages after shmdt(): attach 512 MB, touch, detach, repeat, and
// memory grows past RLIMIT_AS and disk_mb alike. POSIX shared memory (/dev/shm) is the quota'd
// work dir, so multiprocessing still works.
TEST_F(SandboxDisk, NoSystemVSharedMemory) {
  std::string probe =
      "import ctypes, multiprocessing\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "shm = libc.shmget(0, 1 << 20, 0o1600)\n"  // IPC_PRIVATE, IPC_CREAT | 0600
      "if shm >= 0:\n"
      "    libc.shmctl(shm, 0, None)\n"  // IPC_RMID: the host probe leaves nothing behind
      "print('shmget', -1 if shm < 0 else 'ok')\n"
      "with multiprocessing.Pool(2) as p:\n"
      "    print(p.map(abs, [-1, -2]))\n";
  std::string on_host = run_on_host(probe);
  ASSERT_EQ(on_host.find("shmget -1"), std::string::npos) << "the probe is broken: " << on_host;
  SandboxResult r = run_python(probe);
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out, "shmget -1\n[1, 2]\n");
}

// A memfd is memory outside the quota and, unmapped, outside RLIMIT_AS: RLIMIT_FSIZE bytes in each
// of RLIMIT_NOFILE files (64 x 16 MB by default), per process. The filter refuses memfd_create
// (ENOSYS, as from an old kernel); shm_open, the usual fallback, is the quota'd /dev/shm.
TEST_F(SandboxDisk, MemfdsCannotHoldMemoryOutsideTheQuota) {
  std::string probe =
      "import os\n"
      "held = []\n"
      "try:\n"
      "    for i in range(6):\n"
      "        fd = os.memfd_create(f'm{i}')\n"
      "        os.write(fd, b'x' * (4 << 20))\n"
      "        held.append(fd)\n"
      "except OSError as e:\n"
      "    print('refused', e.errno)\n"
      "print('MB', 4 * len(held))\n";
  std::string on_host = run_on_host(probe);
  ASSERT_NE(on_host.find("MB 24"), std::string::npos) << "the probe is broken: " << on_host;
  SandboxLimits l = limits();
  l.disk_mb = 8;
  SandboxResult r = run_python(probe, l);
  ASSERT_TRUE(r.ok()) << r.status() << r.err;
  EXPECT_EQ(r.out, "refused 38\nMB 0\n");  // ENOSYS
  // the fallback stays within the quota
  r = run_python(
      "import mmap, os\n"
      "fd = os.open('/dev/shm/seg', os.O_RDWR | os.O_CREAT)\n"
      "try:\n"
      "    for i in range(16):\n"
      "        os.write(fd, b'x' * (1 << 20))\n"
      "except OSError as e:\n"
      "    print('stopped', e.errno)\n",
      l);
  EXPECT_TRUE(r.disk_full) << r.out << r.err;
  EXPECT_NE(r.out.find("stopped 28"), std::string::npos) << r.out;
}

TEST_F(SandboxDisk, CodeRewardReportsTheQuota) {
  auto set = RewardSet::from_json(
      Json::parse(R"([{"name": "code", "params": {"disk_mb": 4, "timeout_s": 10}}])"),
      builtin_registry());
  Json row = {{"tests", {{"inputs", {"1\n"}}, {"outputs", {"1\n"}}}}};
  Sample s;
  std::string completion = std::string("```python\n") + kDiskFiller + "```";
  s.completion = completion;
  s.row = &row;
  ScoredSample got = set.score(s);
  EXPECT_EQ(got.reward, 0.0);
  EXPECT_EQ(got.details["code"]["disk_quota_exceeded"], true) << got.details.dump();
  EXPECT_EQ(got.details["code"]["status"][0], "disk quota exceeded") << got.details.dump();
  EXPECT_THROW(RewardSet::from_json(
                   Json::parse(R"([{"name": "code", "params": {"disk_mb": 0}}])"),
                   builtin_registry()),
               Error);
}

// A host that gives ordinary users no user namespaces, simulated in a child: a user namespace
// of its own with max_user_namespaces 0, then uid 1000. The sandbox must say why it cannot run
// and the code reward must refuse to start rather than grade with the host visible.
TEST(SandboxUnavailable, SaysWhyAndTheCodeRewardRefusesToStart) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to write another user namespace's id maps";
  int go[2], result[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(result), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    bool ok = unshare(CLONE_NEWUSER) == 0 && write(result[1], "u", 1) == 1 &&
              read(go[0], &c, 1) == 1 && setresgid(0, 0, 0) == 0 && setresuid(0, 0, 0) == 0;
    std::ofstream("/proc/sys/user/max_user_namespaces") << "0";
    ok = ok && setgroups(0, nullptr) == 0 && setresgid(1000, 1000, 1000) == 0 &&
         setresuid(1000, 1000, 1000) == 0;
    std::string report = ok ? "" : "setup failed\n";
    report += run_python("print(1)").status() + "\n";
    try {
      RewardSet::from_json(Json::parse(R"([{"name": "code"}])"), builtin_registry());
      report += "code reward built\n";
    } catch (const Error& e) {
      report += std::string(e.what()) + "\n";
    }
    (void)!write(result[1], report.data(), report.size());
    _exit(0);
  }
  close(go[0]);
  close(result[1]);
  char c;
  ASSERT_EQ(read(result[0], &c, 1), 1);
  std::string maps = "0 0 2000\n";
  for (const char* map : {"uid_map", "gid_map"}) {
    std::ofstream("/proc/" + std::to_string(child) + "/" + map) << maps;
  }
  (void)!write(go[1], "g", 1);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = read(result[0], buf, sizeof(buf))) > 0;) report.append(buf, n);
  waitpid(child, nullptr, 0);
  close(go[1]);
  close(result[0]);
  EXPECT_EQ(report.find("setup failed"), std::string::npos) << report;
  EXPECT_NE(report.find("sandbox error: unshare namespaces"), std::string::npos) << report;
  EXPECT_NE(report.find("[code] the code reward needs its sandbox, which cannot run here"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("user.max_user_namespaces"), std::string::npos) << report;  // the fix
}

// A container whose seccomp profile refuses unshare (Docker's default without CAP_SYS_ADMIN),
// for whoever runs the test: the run says which step failed, and the code reward refuses to
// start with what is missing and how to fix it.
TEST(SandboxUnavailable, UnshareRefusedAsInAContainer) {
  int result[2];
  ASSERT_EQ(pipe(result), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(result[0]);
    std::string report = sandbox_probe::deny_unshare() ? "" : "setup failed\n";
    report += run_python("print(1)").status() + "\n";
    try {
      RewardSet::from_json(Json::parse(R"([{"name": "code"}])"), builtin_registry());
      report += "code reward built\n";
    } catch (const Error& e) {
      report += std::string(e.what()) + "\n";
    }
    (void)!write(result[1], report.data(), report.size());
    _exit(0);
  }
  close(result[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = read(result[0], buf, sizeof(buf))) > 0;) report.append(buf, n);
  waitpid(child, nullptr, 0);
  close(result[0]);
  EXPECT_EQ(report.find("setup failed"), std::string::npos) << report;
  EXPECT_NE(report.find("sandbox error: unshare namespaces: Operation not permitted"),
            std::string::npos)
      << report;
  EXPECT_EQ(report.find("code reward built"), std::string::npos) << report;
  const char* fix = geteuid() == 0 ? "--cap-add SYS_ADMIN" : "user.max_user_namespaces";
  EXPECT_NE(report.find(fix), std::string::npos) << report;
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
