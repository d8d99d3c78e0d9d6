// Data-parallel GRPO under mpirun on loopback: 2 ranks with the same global batch give the
// weights of 1 rank (up to fp32 reduction order), rank 0 alone writes run.db, and a rank that
// dies or hangs ends the job with an error instead of a hang.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "run_mpi.h"

namespace aha::testing {
namespace {

namespace fs = std::filesystem;

// 5 prompts x 4 samples split 2/3 over the ranks, minibatches of 12 sequences: the first
// minibatch spans both ranks, so the loss normalisation across ranks is exercised; rewards are
// scaled by the batch std, which needs every rank's rewards.
class Mpi : public ::testing::Test {
 protected:
  void SetUp() override {
    // The launcher itself must work here (some sandboxes forbid what it needs); aha's own
    // failures under a working launcher still fail the tests.
    if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
    dir_ = fs::temp_directory_path() / ("aha_mpi_run_" + std::to_string(::getpid()));
    aha::testing::make_tiny_model(dir_);
    if (HasFatalFailure()) return;
    cfg_ = (dir_ / "run.json").string();
    std::ofstream(cfg_) << R"({"model": ")" << (dir_ / "model").string() << R"(",
      "output_dir": "unset", "seed": 5,
      "data": {"train": "synthetic:addition", "template": "{prompt}"},
      "rewards": [{"name": "math"}, {"name": "cosine", "params": {"max_len": 10}}],
      "accuracy_reward": "math",
      "sampling": {"max_new_tokens": 10},
      "grpo": {"steps": 3, "prompts_per_step": 5, "group_size": 4, "beta": 0.02,
               "minibatch_size": 12, "num_iterations": 2, "threads": 1, "checksum_every": 1,
               "scale_rewards": "batch"},
      "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.05}})";
  }
  std::string train(const std::string& out) { return "train --config " + cfg_ + " --set output_dir=" + (dir_ / out).string(); }
  fs::path dir_;
  std::string cfg_;
};

TEST_F(Mpi, TwoRanksGiveTheWeightsOfOne) {
  CmdResult one = run_aha(train("one"));
  ASSERT_EQ(one.rc, 0) << one.err;
  CmdResult two = run_mpi(train("two"));
  ASSERT_EQ(two.rc, 0) << two.err;
  const double diff = max_weight_diff(dir_ / "one/checkpoint-3/model.safetensors",
                                      dir_ / "two/checkpoint-3/model.safetensors");
  const double moved = max_weight_diff(dir_ / "model/model.safetensors", dir_ / "one/checkpoint-3/model.safetensors");
  std::printf("max |1 rank - 2 ranks| = %.3g, max |update| = %.3g\n", diff, moved);
  EXPECT_GT(moved, 1e-3);
  EXPECT_LT(diff, 1e-5);
  // Each rank's part in micro-batches of 3: the normaliser summed over ranks after the last one.
  CmdResult micro = run_mpi(train("two_micro") + " --set grpo.micro_batch_size=3");
  ASSERT_EQ(micro.rc, 0) << micro.err;
  const double micro_diff = max_weight_diff(dir_ / "one/checkpoint-3/model.safetensors",
                                            dir_ / "two_micro/checkpoint-3/model.safetensors");
  std::printf("max |1 rank - 2 ranks in micro-batches| = %.3g\n", micro_diff);
  EXPECT_LT(micro_diff, 1e-5);
  // One database, every rollout of both ranks in it.
  CmdResult runs = run_aha("runs " + (dir_ / "two/run.db").string());
  EXPECT_NE(runs.out.find("3 steps, 60 rollouts"), std::string::npos) << runs.out;
  // Resume the 2-rank run on 1 rank: it goes on from the checkpoint.
  CmdResult more = run_aha(train("two") + " --set grpo.steps=4 --resume");
  EXPECT_EQ(more.rc, 0) << more.err;
  EXPECT_TRUE(fs::exists(dir_ / "two/checkpoint-4"));
}

TEST_F(Mpi, PretrainTwoRanksGiveTheWeightsOfOne) {
  const std::string cfg = (dir_ / "pre.json").string();
  std::ofstream(cfg) << R"({"model": ")" << (dir_ / "model").string() << R"(", "output_dir": "unset",
    "data": {"train": "synthetic:addition", "size": 200}, "steps": 3, "batch_tokens": 300,
    "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.2}})";
  const std::string base = "pretrain --config " + cfg + " --set output_dir=";
  CmdResult one = run_aha(base + (dir_ / "pre1").string());
  ASSERT_EQ(one.rc, 0) << one.err;
  CmdResult two = run_mpi(base + (dir_ / "pre2").string());
  ASSERT_EQ(two.rc, 0) << two.err;
  const double diff = max_weight_diff(dir_ / "pre1/final/model.safetensors", dir_ / "pre2/final/model.safetensors");
  const double moved = max_weight_diff(dir_ / "model/model.safetensors", dir_ / "pre1/final/model.safetensors");
  std::printf("pretrain: max |1 rank - 2 ranks| = %.3g, max |update| = %.3g\n", diff, moved);
  EXPECT_GT(moved, 1e-3);
  EXPECT_LT(diff, 1e-5);
}

TEST_F(Mpi, DistillTwoRanksGiveTheWeightsOfOne) {
  {
    std::ofstream sft(dir_ / "sft.jsonl");
    for (int a = 0; a < 30; ++a) {
      sft << R"({"prompt": "What is )" << a << R"( + 7?", "completion": "<answer> )" << a + 7 << R"( </answer>"})" << "\n";
    }
  }
  const std::string cfg = (dir_ / "distill.json").string();
  std::ofstream(cfg) << R"({"student_config": "llama", "tokenizer": ")" << (dir_ / "tok").string()
                     << R"(", "output_dir": "unset", "data": {"train": ")" << (dir_ / "sft.jsonl").string()
                     << R"("}, "steps": 3, "batch_tokens": 120, "threads": 1,
    "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.2}})";
  const std::string base = "distill train --config " + cfg + " --set output_dir=";
  CmdResult one = run_aha(base + (dir_ / "d1").string());
  ASSERT_EQ(one.rc, 0) << one.err;
  CmdResult two = run_mpi(base + (dir_ / "d2").string());
  ASSERT_EQ(two.rc, 0) << two.err;
  const double diff = max_weight_diff(dir_ / "d1/final/model.safetensors", dir_ / "d2/final/model.safetensors");
  std::printf("distill: max |1 rank - 2 ranks| = %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);  // each rank alone (half the batch) would land far from this
}

TEST_F(Mpi, ARankThatDiesEndsTheJob) {
  const auto t0 = std::chrono::steady_clock::now();
  CmdResult r = run_mpi(train("dies"), {"AHA_FAULT=exit:1:2"});
  EXPECT_NE(r.rc, 0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 120.0);
}

TEST_F(Mpi, ARankThatHangsTimesOut) {
  const auto t0 = std::chrono::steady_clock::now();
  CmdResult r = run_mpi(train("hangs"), {"AHA_FAULT=hang:1:2", "AHA_MPI_TIMEOUT=5"});
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("error: rank 0 of 2:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 120.0);
}

}  // namespace
}  // namespace aha::testing
