// Runs the aha binary as a user would (shell, stdin, stdout, stderr, a time limit) for the
// command-line tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace aha::testing {

struct CmdResult {
  int rc;
  std::string out, err;
};

// `args` is a shell fragment after the binary; stdin is `input`; `env`, when set, is env(1)'s
// arguments before it ("-u NAME", "NAME=value").
inline CmdResult run_aha(const std::string& args, const std::string& input = "",
                         const std::string& env = "") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "stdin") << input;
  std::string cmd = (env.empty() ? "" : "env " + env + " ") + "timeout 120 " + AHA_BINARY +
                    " " + args + " < " + (dir / "stdin").string() + " > " +
                    (dir / "stdout").string() + " 2> " + (dir / "stderr").string();
  int status = std::system(cmd.c_str());
  auto slurp = [](const fs::path& p) {
    std::stringstream ss;
    ss << std::ifstream(p).rdbuf();
    return ss.str();
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "stdout"),
          slurp(dir / "stderr")};
}

// A fresh dir holding a tiny BPE tokenizer (dir/tok) and a random tiny MLA+MoE checkpoint using
// it (dir/model), made through the binary as a user would.
inline void make_tiny_model(const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "corpus.txt") << "What is 12 + 7? 19 <think> </think> <answer> 19 </answer>\n";
  ASSERT_EQ(run_aha("tokenizer train --corpus " + (dir / "corpus.txt").string() +
                    " --vocab-size 280 --out " + (dir / "tok").string()).rc, 0);
  CmdResult init = run_aha("init --preset tiny --seed 4 --tokenizer " + (dir / "tok").string() +
                           " --out " + (dir / "model").string());
  ASSERT_EQ(init.rc, 0) << init.err;
}

// The contract for bad input: non-zero exit and exactly one line `error: ...` naming it.
inline void expect_one_error_line(const CmdResult& r, const std::string& needle) {
  EXPECT_NE(r.rc, 0);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace aha::testing
