// When nothing can be learned (every group's rewards equal), the user hears it: in the progress
// line of `aha train` and in `aha runs`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "run_aha.h"

namespace {

namespace fs = std::filesystem;
using aha::testing::CmdResult;
using aha::testing::run_aha;

TEST(NoSignalCli, ProgressLineAndRunsSayNothingIsLearned) {
  const fs::path dir = fs::temp_directory_path() / ("aha_no_signal_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  aha::testing::make_tiny_model(dir);
  const std::string cfg = (dir / "run.json").string();
  // The R1 format (<think>…</think><answer>…</answer>) is out of reach in 4 tokens of a random
  // model: every reward is 0, every group flat.
  std::ofstream(cfg) << R"({"model": ")" << (dir / "model").string() << R"(",
    "output_dir": ")" << (dir / "out").string() << R"(", "seed": 5,
    "data": {"train": "synthetic:addition", "template": "{prompt}"},
    "rewards": [{"name": "format"}], "sampling": {"max_new_tokens": 4},
    "grpo": {"steps": 6, "prompts_per_step": 2, "group_size": 2, "save_every": 0},
    "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.01}})";
  CmdResult train = run_aha("train --config " + cfg);
  ASSERT_EQ(train.rc, 0) << train.err;
  // The note starts at the third flat step.
  auto line = [&](const std::string& step) {
    const size_t a = train.err.find("[train] step " + step);
    return a == std::string::npos ? std::string() : train.err.substr(a, train.err.find('\n', a) - a);
  };
  EXPECT_EQ(line("2/6").find("NO SIGNAL"), std::string::npos) << train.err;
  EXPECT_NE(line("3/6").find("NO SIGNAL"), std::string::npos) << train.err;
  EXPECT_NE(train.err.find("NO SIGNAL: all groups' rewards equal for 6 steps"), std::string::npos)
      << train.err;
  CmdResult runs = run_aha("runs " + (dir / "out" / "run.db").string());
  ASSERT_EQ(runs.rc, 0) << runs.err;
  EXPECT_NE(runs.out.find("(no_signal): every group had equal rewards"), std::string::npos)
      << runs.out;
  EXPECT_NE(runs.out.find("flat"), std::string::npos) << runs.out;
  EXPECT_NE(runs.out.find("1.00"), std::string::npos) << runs.out;
  fs::remove_all(dir);
}

}  // namespace
