// The `aha` process runs with glibc's heaps on transparent huge pages where the kernel hands
// them out on advice only (cli/process_memory.cpp: one exec of itself with GLIBC_TUNABLES), and
// what it starts sees the caller's environment, not that one. A command reward stands for every
// child process (rewards, tools, sandboxes): it reports its own environment and its parent's.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "aha/core/config.h"
#include "bench_json.h"
#include "run_aha.h"

namespace {

namespace fs = std::filesystem;
using aha::testing::json_lines;
using aha::testing::run_aha;

bool kernel_advises_huge_pages() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  return std::getline(f, line) && line.find("[madvise]") != std::string::npos;
}

class ProcessMemoryCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_procmem_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // "unset" where a variable is absent; the parent's exec-time GLIBC_TUNABLES from /proc.
    std::ofstream(dir_ / "env.sh")
        << "#!/bin/sh\n"
           "p=$(tr '\\0' '\\n' < /proc/$PPID/environ | grep '^GLIBC_TUNABLES=' | cut -d= -f2-)\n"
           "while read line; do\n"
           "  echo \"{\\\"reward\\\": 1, \\\"details\\\": {\\\"own\\\": "
           "\\\"${GLIBC_TUNABLES-unset}\\\", \\\"saved\\\": \\\"${AHA_GLIBC_TUNABLES_BEFORE-unset}"
           "\\\", \\\"parent\\\": \\\"$p\\\"}}\"\n"
           "done\n";
    fs::permissions(dir_ / "env.sh", fs::perms::owner_all);
    std::ofstream(dir_ / "in.jsonl") << "{\"completion\": \"x\"}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The command reward's details for one line, aha run under `env ENV` (env(1)'s arguments).
  aha::Json child_env(const std::string& env) {
    const aha::testing::CmdResult r =
        run_aha("reward --reward command --params '{\"command\": {\"command\": \"" +
                    (dir_ / "env.sh").string() + "\"}}' --input " + (dir_ / "in.jsonl").string(),
                "", env);
    EXPECT_EQ(r.rc, 0) << r.err;
    const auto lines = json_lines(r.out);
    EXPECT_EQ(lines.size(), 1u) << r.out;
    return lines.empty() ? aha::Json() : lines[0]["details"]["command"];
  }

  fs::path dir_;
};

TEST_F(ProcessMemoryCli, RunsOnHugePagesAndChildrenSeeNoTunable) {
  const aha::Json d = child_env("-u GLIBC_TUNABLES");
  EXPECT_EQ(d["own"], "unset") << d.dump();
  EXPECT_EQ(d["saved"], "unset") << d.dump();
  if (kernel_advises_huge_pages()) {
    EXPECT_EQ(d["parent"], "glibc.malloc.hugetlb=1") << d.dump();
  } else {
    EXPECT_EQ(d["parent"], "") << d.dump();  // no exec: nothing to gain
  }
}

TEST_F(ProcessMemoryCli, KeepsTheCallersTunablesForItselfAndItsChildren) {
  const aha::Json d = child_env("GLIBC_TUNABLES=glibc.malloc.arena_max=2");
  EXPECT_EQ(d["own"], "glibc.malloc.arena_max=2") << d.dump();
  EXPECT_EQ(d["saved"], "unset") << d.dump();
  // (glibc parses the parent's copy in place: /proc shows its first tunable, not the list.)
  EXPECT_EQ(d["parent"].get<std::string>().rfind("glibc.malloc.arena_max=2", 0), 0u) << d.dump();
}

TEST_F(ProcessMemoryCli, SwitchedOffByTheEnvironment) {
  const aha::Json d = child_env("-u GLIBC_TUNABLES AHA_HUGE_PAGES=0");
  EXPECT_EQ(d["parent"], "") << d.dump();
  EXPECT_EQ(d["own"], "unset") << d.dump();
}

}  // namespace
