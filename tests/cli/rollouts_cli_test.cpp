// `aha train --rollouts` and `aha export-rollouts` as a user runs them.
#include <filesystem>

#include "run_aha.h"

namespace aha::testing {
namespace {

namespace fs = std::filesystem;
const std::string kData = AHA_TEST_DATA_DIR;

TEST(RolloutsCli, TrainFromAFileThenExportTheStep) {
  const fs::path dir = fs::temp_directory_path() / ("aha_rollouts_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string cfg = (dir / "run.json").string();
  std::ofstream(cfg) << R"({"model": ")" << kData << R"(/golden/deepseek_v3", "output_dir": ")"
                     << (dir / "run").string()
                     << R"(", "grpo": {"steps": 2, "beta": 0.04}, "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.1}})";
  CmdResult r = run_aha("train --config " + cfg + " --rollouts " + kData + "/grpo_replay/rollouts.jsonl");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "run" / "checkpoint-2" / "model.safetensors"));
  CmdResult e = run_aha("export-rollouts " + (dir / "run" / "run.db").string() + " --step 2");
  ASSERT_EQ(e.rc, 0) << e.err;
  EXPECT_EQ(std::count(e.out.begin(), e.out.end(), '\n'), 6);
  EXPECT_NE(e.out.find("\"old_logprobs\""), std::string::npos);
  EXPECT_NE(e.out.find("\"ref_logprobs\""), std::string::npos);
  // The export trains again.
  std::ofstream(dir / "step2.jsonl") << e.out;
  CmdResult again = run_aha("train --config " + cfg + " --set output_dir=" + (dir / "again").string() +
                            " --set grpo.steps=1 --rollouts " + (dir / "step2.jsonl").string());
  EXPECT_EQ(again.rc, 0) << again.err;

  expect_one_error_line(run_aha("export-rollouts " + (dir / "run" / "run.db").string() + " --step 9"),
                        "no rollouts at step 9");
  expect_one_error_line(run_aha("export-rollouts " + (dir / "nope.db").string() + " --step 1"), "does not exist");
  std::ofstream(dir / "bad.jsonl") << R"({"prompt_id":"a","prompt_ids":[1],"completion_ids":[2],"reward":1})" "\n"
                                   << R"({"prompt_id":"a","prompt_ids":[1],"completion_ids":[99],"reward":0})" "\n";
  expect_one_error_line(run_aha("train --config " + cfg + " --set output_dir=" + (dir / "bad").string() +
                                " --rollouts " + (dir / "bad.jsonl").string()),
                        "bad.jsonl:2: \"completion_ids\" holds id 99, outside the vocabulary");
  EXPECT_FALSE(fs::exists(dir / "bad" / "run.db")) << "a bad file must fail before the run starts";
}

}  // namespace
}  // namespace aha::testing
