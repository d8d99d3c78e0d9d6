// What the sandbox tests share: limits, running Python inside and outside the sandbox, and
// the skip when this host cannot build one.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "aha/rewards/sandbox.h"

namespace aha::rewards::sandbox_fixture {

namespace fs = std::filesystem;

inline SandboxLimits limits(double wall_s = 10.0) {
  SandboxLimits l;
  l.wall_s = wall_s;
  l.memory_mb = 512;
  l.output_bytes = 1 << 16;
  return l;
}

inline SandboxResult run_python(const std::string& program, SandboxLimits l = limits(),
                         const std::vector<std::string>& extra_args = {}) {
  std::vector<std::string> argv{"python3", "-I", "-B", "main.py"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return run_sandboxed(argv, {{"main.py", program}}, "", l);
}

// The same probe without a sandbox: what the test would see if the sandbox let it through.
inline std::string run_on_host(const std::string& program) {
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


// Without the privilege to make namespaces (an ordinary user without user namespaces, a
// container's root without CAP_SYS_ADMIN) there is no sandbox: skip, saying so. Any other
// failure to build one is a test failure.
inline void skip_without_sandbox() {
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

}  // namespace aha::rewards::sandbox_fixture
