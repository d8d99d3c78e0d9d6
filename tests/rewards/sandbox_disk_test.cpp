// The sandbox's bounded disk and memory, and what aha says where no sandbox can be built.
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

}  // namespace
}  // namespace aha::rewards
