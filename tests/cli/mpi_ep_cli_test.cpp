// Expert parallelism under mpirun on loopback (parallel.ep = 2): the routed experts split over
// 2 ranks, tokens travel to their experts' rank and back, and training ends with the weights a
// single rank reaches on the same config (up to fp32 summation order).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>

#include "aha/core/config.h"
#include "run_mpi.h"

namespace aha::testing {
namespace {

namespace fs = std::filesystem;

// kB rank 0 sent all-to-all at the last step (from the progress line), or -1.
double alltoall_kb(const std::string& err) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex(R"(rank 0 sent ([0-9.]+) kB all-to-all)"))) return -1;
  return std::stod(m[1]);
}

class MpiEp : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_mpi_ep_" + std::to_string(::getpid()));
    make_tiny_model(dir_);  // 8 routed experts, 2 per token, in layers 1-3
    if (HasFatalFailure()) return;
    cfg_ = (dir_ / "pre.json").string();
    std::ofstream(cfg_) << R"({"model": ")" << (dir_ / "model").string() << R"(",
      "output_dir": "unset", "data": {"train": "synthetic:addition", "size": 200}, "steps": 3,
      "batch_tokens": 300, "threads": 1, "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.2}})";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string pretrain(const std::string& out) {
    return "pretrain --config " + cfg_ + " --set output_dir=" + (dir_ / out).string();
  }
  // A copy of the tiny model whose config.json sets more keys.
  std::string model_with(const std::string& name, const Json& keys) {
    const fs::path to = dir_ / name;
    fs::create_directories(to);
    for (const auto& f : fs::directory_iterator(dir_ / "model"))
      fs::copy(f.path(), to / f.path().filename());
    Json c = load_json_file((to / "config.json").string());
    c.update(keys);
    std::ofstream(to / "config.json") << c.dump(2);
    return to.string();
  }
  void expect_same_weights(const std::string& one, const std::string& two,
                           const std::string& from) {
    // Directories: an EP run's checkpoint is one HF shard per rank plus the index.
    const double diff = max_weight_diff(dir_ / one / "final", dir_ / two / "final");
    const double moved = max_weight_diff(fs::path(from), dir_ / one / "final");
    std::printf("%s: max |1 rank - 2 ranks EP| = %.3g, max |update| = %.3g\n", two.c_str(), diff,
                moved);
    EXPECT_GT(moved, 1e-3);
    EXPECT_LT(diff, 1e-5);
  }
  // Pretrains on 1 rank (run NAME"one") and on 2 EP ranks (NAME"ep2") with `extra` options; the
  // same weights come out.
  void expect_ep2_is_one_rank(const std::string& name, const std::string& extra,
                              const std::string& from) {
    CmdResult one = run_aha(pretrain(name + "one") + extra);
    ASSERT_EQ(one.rc, 0) << one.err;
    CmdResult two = run_mpi(pretrain(name + "ep2") + extra + " --set parallel.ep=2");
    ASSERT_EQ(two.rc, 0) << two.err;
    expect_same_weights(name + "one", name + "ep2", from);
  }
  // GRPO as in mpi_cli_test: 5 prompts x 4 samples (2/3 groups per rank), with a reference.
  std::string grpo_config() {
    const std::string cfg = (dir_ / "grpo.json").string();
    std::ofstream(cfg) << R"({"model": ")" << (dir_ / "model").string() << R"(",
      "output_dir": "unset", "seed": 5,
      "data": {"train": "synthetic:addition", "template": "{prompt}"},
      "rewards": [{"name": "math"}, {"name": "cosine", "params": {"max_len": 10}}],
      "accuracy_reward": "math", "sampling": {"max_new_tokens": 10},
      "grpo": {"steps": 3, "prompts_per_step": 5, "group_size": 4, "beta": 0.02,
               "minibatch_size": 12, "num_iterations": 2, "threads": 1, "checksum_every": 1,
               "scale_rewards": "batch"},
      "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.05}})";
    return cfg;
  }
  fs::path dir_;
  std::string cfg_;
};

TEST_F(MpiEp, PretrainTwoExpertParallelRanksGiveTheWeightsOfOne) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  CmdResult one = run_aha(pretrain("one"));
  ASSERT_EQ(one.rc, 0) << one.err;
  CmdResult two = run_mpi(pretrain("ep2") + " --set parallel.ep=2");
  ASSERT_EQ(two.rc, 0) << two.err;
  expect_same_weights("one", "ep2", (dir_ / "model").string());
  EXPECT_GT(alltoall_kb(two.err), 0.0) << "no token travelled to another rank's experts:\n"
                                       << two.err;
  // Data parallel alone sends no all-to-all.
  CmdResult dp = run_mpi(pretrain("dp2"));
  ASSERT_EQ(dp.rc, 0) << dp.err;
  EXPECT_EQ(alltoall_kb(dp.err), 0.0) << dp.err;
}

// Checkpoints under expert parallelism: each rank writes its own experts (and their AdamW
// moments) as one HF shard, rank 0 the index. A 2-rank EP run paused at step 2 resumes on 1 rank,
// and a 1-rank run
// resumes on 2 EP ranks; both end where 4 straight steps on 1 rank end (a missing or wrong
// moment would move Adam's next steps by about lr).
TEST_F(MpiEp, ResumeWithAnotherExpertParallelSize) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string adam =
      " --set steps=4 --set optimizer.kind=adamw --set schedule.lr=0.003";
  CmdResult straight = run_aha(pretrain("straight") + adam);
  ASSERT_EQ(straight.rc, 0) << straight.err;
  CmdResult a = run_mpi(pretrain("ep_then_one") + adam + " --set parallel.ep=2 --max-steps 2");
  ASSERT_EQ(a.rc, 0) << a.err;
  CmdResult b = run_aha(pretrain("ep_then_one") + adam + " --resume");
  ASSERT_EQ(b.rc, 0) << b.err;
  CmdResult c = run_aha(pretrain("one_then_ep") + adam + " --max-steps 2");
  ASSERT_EQ(c.rc, 0) << c.err;
  CmdResult d = run_mpi(pretrain("one_then_ep") + adam + " --set parallel.ep=2 --resume");
  ASSERT_EQ(d.rc, 0) << d.err;
  expect_same_weights("straight", "ep_then_one", (dir_ / "model").string());
  expect_same_weights("straight", "one_then_ep", (dir_ / "model").string());
}

// The routed experts' weights, gradients and AdamW moments per rank, from the log line.
std::vector<double> expert_mb(const std::string& err, const std::string& what) {
  std::smatch m;
  const std::regex re("routed experts per rank: .*" + what + " ([0-9./]+) MB");
  if (!std::regex_search(err, m, re)) return {};
  std::vector<double> out;
  std::stringstream ss(m[1].str());
  for (std::string x; std::getline(ss, x, '/');) out.push_back(std::stod(x));
  return out;
}

// Under parallel.ep = 2 each rank allocates half the routed experts' weights, gradients and
// moments, and its checkpoint shard holds exactly its own experts: rank 1's shard has experts
// 4-7 of every MoE layer and nothing replicated; no file holds an expert twice.
TEST_F(MpiEp, EachRankHoldsAndWritesOnlyItsExperts) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string adam = " --set optimizer.kind=adamw --set schedule.lr=0.003";
  CmdResult one = run_aha(pretrain("mem1") + adam);
  ASSERT_EQ(one.rc, 0) << one.err;
  CmdResult two = run_mpi(pretrain("mem2") + adam + " --set parallel.ep=2");
  ASSERT_EQ(two.rc, 0) << two.err;
  for (const char* what : {"weights", "gradients", "AdamW moments"}) {
    const std::vector<double> w1 = expert_mb(one.err, what), w2 = expert_mb(two.err, what);
    ASSERT_EQ(w1.size(), 1u) << what << "\n" << one.err;
    ASSERT_EQ(w2.size(), 2u) << what << "\n" << two.err;
    std::printf("%s: 1 rank %.3f MB, 2 EP ranks %.3f / %.3f MB\n", what, w1[0], w2[0], w2[1]);
    EXPECT_GT(w1[0], 0.0);
    for (double w : w2) EXPECT_NEAR(w, w1[0] / 2, 0.002) << what;
  }
  const fs::path final_dir = dir_ / "mem2/final";
  TensorArchive r0((final_dir / "model-00001-of-00002.safetensors").string());
  TensorArchive r1((final_dir / "model-00002-of-00002.safetensors").string());
  const std::regex expert(R"(\.mlp\.experts\.([0-9]+)\.)");
  int n1 = 0;
  for (const std::string& name : r1.names()) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(name, m, expert)) << "rank 1 wrote a replicated " << name;
    EXPECT_GE(std::stoi(m[1]), 4) << name;
    EXPECT_FALSE(r0.contains(name)) << name << " written twice";
    ++n1;
  }
  EXPECT_EQ(n1, 3 * 3 * 4);  // 3 MoE layers x 4 experts x (gate, up, down)
  for (const std::string& name : r0.names()) {
    std::smatch m;
    if (std::regex_search(name, m, expert)) {
      EXPECT_LT(std::stoi(m[1]), 4) << name;
    }
  }
  EXPECT_TRUE(fs::exists(final_dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(final_dir / "model.safetensors"));
  // A single rank loads it whole: the straight comparison of the pretraining test.
  EXPECT_LT(max_weight_diff(dir_ / "mem1/final", final_dir), 1e-5);
}

// Device-limited routing with one device per token (each rank holds one device's experts):
// the same function on 1 rank and on 2 (moe_routing_test counts the devices per token).
TEST_F(MpiEp, DeviceLimitedRoutingOneDevicePerToken) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string model = model_with("m1", {{"n_devices", 2}, {"topk_devices", 1}});
  const std::string use = " --set model=" + model;
  expect_ep2_is_one_rank("m1", use, model);
}

// DeepSeek-V2's device-level and communication balance losses (2 devices, one per rank): their
// statistics are summed over the ranks, so 2 EP ranks train the 1-rank objective; the losses
// move the weights (against a run without them); data parallel alone refuses them.
TEST_F(MpiEp, DeviceBalanceLossesTwoExpertParallelRanksGiveTheWeightsOfOne) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string model = model_with(
      "db", {{"n_devices", 2}, {"device_balance_alpha", 0.5}, {"comm_balance_alpha", 0.5}});
  const std::string use = " --set model=" + model;
  expect_ep2_is_one_rank("db", use, model);
  if (HasFatalFailure()) return;
  CmdResult plain = run_aha(pretrain("dbplain"));
  ASSERT_EQ(plain.rc, 0) << plain.err;
  const double effect = max_weight_diff(dir_ / "dbone/final", dir_ / "dbplain/final");
  std::printf("device balance losses: max |with - without| = %.3g\n", effect);
  EXPECT_GT(effect, 1e-4);
  CmdResult dp = run_mpi(pretrain("dbdp2") + use);
  EXPECT_NE(dp.rc, 0);
  EXPECT_NE(dp.err.find("device_balance_alpha (config.json) needs parallel.ep = 2"),
            std::string::npos)
      << dp.err;
}

// GRPO as in mpi_cli_test (5 prompts x 4 samples split 2/3, minibatches of 12 spanning both
// ranks, the last with no sequence on rank 0, which still serves its experts), each rank
// holding only its experts of the policy and the reference: rollouts decoded in lockstep
// (a rank whose sequences are done serves the other's rows) and scoring forwards evened out
// over the ranks. With and without
// keep routing (the experts recorded at sampling replayed in the sharded update), and with keep
// routing and DeepSeek-V2's device-level and communication balance losses weighing in.
// One number per step of a run database's metrics (sqlite3's json_extract), in step order.
std::vector<double> step_metric(const fs::path& db, const std::string& key) {
  const std::string cmd = "sqlite3 " + db.string() + " \"SELECT json_extract(metrics, '$." +
                          key + "') FROM steps ORDER BY step\"";
  std::vector<double> v;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return v;
  char line[256];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    if (line[0] != '\n') v.push_back(std::strtod(line, nullptr));
  }
  ::pclose(p);
  return v;
}

// Step 1's rollouts (the same initial weights on both sides) of two GRPO runs given by their
// `train ...` arguments: the same tokens and recorded routing, bit for bit (the sharded decode
// is batch invariant like the whole one), and the same pi_old and reference logprobs up to fp32
// summation order (the sharded scoring forwards).
void expect_same_rollouts(const std::string& one, const std::string& two, const std::string& name) {
  auto rollouts = [](const std::string& train_args) {
    const std::string out_dir = train_args.substr(train_args.rfind("output_dir=") + 11);
    const std::string db = fs::path(out_dir.substr(0, out_dir.find(' '))) / "run.db";
    CmdResult r = run_aha("export-rollouts " + db + " --step 1");
    EXPECT_EQ(r.rc, 0) << r.err;
    std::vector<Json> rows;
    std::stringstream ss(r.out);
    for (std::string line; std::getline(ss, line);) {
      if (!line.empty()) rows.push_back(Json::parse(line));
    }
    return rows;
  };
  const std::vector<Json> a = rollouts(one), b = rollouts(two);
  ASSERT_EQ(a.size(), 20u) << name;
  ASSERT_EQ(a.size(), b.size()) << name;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["completion_ids"], b[i]["completion_ids"]) << name << " rollout " << i;
    EXPECT_EQ(a[i].value("routing", Json()), b[i].value("routing", Json())) << name << " " << i;
    for (const char* k : {"old_logprobs", "ref_logprobs"}) {
      ASSERT_TRUE(a[i].contains(k) && b[i].contains(k)) << name << " " << k;
      ASSERT_EQ(a[i][k].size(), b[i][k].size());
      for (size_t t = 0; t < a[i][k].size(); ++t) {
        worst = std::max(worst, std::abs(a[i][k][t].get<double>() - b[i][k][t].get<double>()));
      }
    }
  }
  std::printf("grpo %s step 1: same completions; max |logprob 1 rank - 2 ranks EP| = %.3g\n",
              name.c_str(), worst);
  EXPECT_LT(worst, 1e-5) << name;
}

TEST_F(MpiEp, GrpoTwoExpertParallelRanksGiveTheWeightsOfOne) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string cfg = grpo_config();
  const std::string balance =
      " --set grpo.keep_routing=true --set grpo.aux_loss_weight=1 --set model=" +
      model_with("gdb", {{"n_devices", 2}, {"device_balance_alpha", 0.5},
                         {"comm_balance_alpha", 0.5}});
  // gidle: 4 live sequences a rank (one group), so rank 0 (2 groups) finishes decoding a
  // round before rank 1 (3 groups) and serves its experts idle meanwhile; and 4 rollouts a
  // scoring chunk, so rank 0 makes 2 scoring forwards per model where rank 1 makes 3.
  const std::pair<std::string, std::string> cases[] = {
      {"gfalse", " --set grpo.keep_routing=false"},
      {"gtrue", " --set grpo.keep_routing=true"},
      {"gidle", " --set grpo.keep_routing=true --set grpo.max_batch=4 --set grpo.minibatch_size=4"},
      {"gbalance", balance}};
  for (const auto& [name, sets] : cases) {
    const std::string base =
        "train --config " + cfg + sets + " --set output_dir=" + (dir_ / name).string();
    CmdResult one = run_aha(base + "1");
    ASSERT_EQ(one.rc, 0) << one.err;
    CmdResult two = run_mpi(base + "2 --set parallel.ep=2");
    ASSERT_EQ(two.rc, 0) << two.err;
    const fs::path a = dir_ / (name + "1/checkpoint-3");
    const double diff = max_weight_diff(a, dir_ / (name + "2/checkpoint-3"));
    const double moved = max_weight_diff(dir_ / "model", a);
    std::printf("grpo %s: max |1 rank - 2 ranks EP| = %.3g, max |update| = %.3g\n",
                name.c_str(), diff, moved);
    EXPECT_GT(moved, 1e-3);
    EXPECT_LT(diff, 1e-5);
    expect_same_rollouts(base + "1", base + "2", name);
    // Each rank held half the routed experts (policy and reference built sharded).
    const std::vector<double> w1 = expert_mb(one.err, "weights"), w2 = expert_mb(two.err, "weights");
    ASSERT_EQ(w1.size(), 1u) << one.err;
    ASSERT_EQ(w2.size(), 2u) << two.err;
    for (double w : w2) EXPECT_NEAR(w, w1[0] / 2, 0.002) << two.err;
  }
  // DeepSeek-V2's balance losses are step metrics, the same on 1 rank and on 2 EP ranks.
  const std::vector<double> b1 = step_metric(dir_ / "gbalance1/run.db", "device_balance_loss");
  const std::vector<double> b2 = step_metric(dir_ / "gbalance2/run.db", "device_balance_loss");
  const std::vector<double> c2 = step_metric(dir_ / "gbalance2/run.db", "comm_balance_loss");
  ASSERT_EQ(b1.size(), 3u);
  ASSERT_EQ(b2.size(), 3u);
  ASSERT_EQ(c2.size(), 3u);
  for (size_t i = 0; i < b1.size(); ++i) {
    std::printf("grpo step %zu device_balance_loss 1 rank %.9g, 2 EP ranks %.9g; comm %.9g\n",
                i + 1, b1[i], b2[i], c2[i]);
    EXPECT_GT(b1[i], 0.0);
    EXPECT_GT(c2[i], 0.0);
    EXPECT_NEAR(b1[i], b2[i], 1e-6 * b1[i]);
  }
}

// A GRPO run on 2 EP ranks (each rank's experts in its own checkpoint shard) paused after 2
// steps and resumed on 1 rank, and the other way round, end where 3 straight steps on 1 rank
// end. SGD: under AdamW GRPO on 2 ranks, data parallel alone included, drifts from 1 rank by
// about 2e-2 in 2 steps (Adam turns near-zero gradients' rounding into +-lr steps, and the next
// step's sampling follows the weights); pretraining's resume test covers the moments.
TEST_F(MpiEp, GrpoResumesWithAnotherExpertParallelSize) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string base = "train --config " + grpo_config() + " --set output_dir=";
  CmdResult straight = run_aha(base + (dir_ / "gs").string());
  ASSERT_EQ(straight.rc, 0) << straight.err;
  const std::pair<std::string, bool> runs[] = {{"g_ep_then_one", true}, {"g_one_then_ep", false}};
  for (const auto& [name, ep_first] : runs) {
    const std::string out = base + (dir_ / name).string();
    CmdResult a = ep_first ? run_mpi(out + " --set parallel.ep=2 --max-steps 2")
                           : run_aha(out + " --max-steps 2");
    ASSERT_EQ(a.rc, 0) << a.err;
    CmdResult b = ep_first ? run_aha(out + " --resume")
                           : run_mpi(out + " --set parallel.ep=2 --resume");
    ASSERT_EQ(b.rc, 0) << b.err;
    const fs::path end = dir_ / name / "checkpoint-3";
    const double diff = max_weight_diff(dir_ / "gs/checkpoint-3", end);
    const double moved = max_weight_diff(dir_ / "model", dir_ / "gs/checkpoint-3");
    std::printf("grpo %s: max |straight - resumed| = %.3g, max |update| = %.3g\n", name.c_str(),
                diff, moved);
    EXPECT_GT(moved, 1e-3);
    EXPECT_LT(diff, 1e-5);
  }
}

// SFT of an MoE student (the tiny model), 3 SGD steps, as mpi_cli_test's data-parallel distill.
TEST_F(MpiEp, DistillTwoExpertParallelRanksGiveTheWeightsOfOne) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  {
    std::ofstream sft(dir_ / "sft.jsonl");
    for (int a = 0; a < 30; ++a) {
      sft << R"({"prompt": "What is )" << a << R"( + 7?", "completion": "<answer> )" << a + 7
          << R"( </answer>"})"
          << "\n";
    }
  }
  const std::string cfg = (dir_ / "distill.json").string();
  std::ofstream(cfg) << R"({"student": ")" << (dir_ / "model").string()
                     << R"(", "output_dir": "unset", "data": {"train": ")"
                     << (dir_ / "sft.jsonl").string() << R"("}, "steps": 3, "batch_tokens": 120,
    "threads": 1, "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.2}})";
  const std::string base = "distill train --config " + cfg + " --set output_dir=";
  CmdResult one = run_aha(base + (dir_ / "d1").string());
  ASSERT_EQ(one.rc, 0) << one.err;
  CmdResult two = run_mpi(base + (dir_ / "d2").string() + " --set parallel.ep=2");
  ASSERT_EQ(two.rc, 0) << two.err;
  expect_same_weights("d1", "d2", (dir_ / "model").string());
}

// A rank that stops responding inside an expert-parallel update, or before its rollouts: the
// other rank's collective times out and the job ends with the rank and the exchange named.
TEST_F(MpiEp, ARankThatHangsInAnUpdateTimesOut) {
  if (const std::string why = mpi_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string cfg = (dir_ / "hang.json").string();
  std::ofstream(cfg) << R"({"model": ")" << (dir_ / "model").string() << R"(",
    "output_dir": "unset", "seed": 5, "data": {"train": "synthetic:addition", "template": "{prompt}"},
    "rewards": [{"name": "math"}], "sampling": {"max_new_tokens": 6},
    "grpo": {"steps": 3, "prompts_per_step": 2, "group_size": 2, "threads": 1},
    "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.05}, "parallel": {"ep": 2}})";
  const auto t0 = std::chrono::steady_clock::now();
  CmdResult r = run_mpi("train --config " + cfg + " --set output_dir=" + (dir_ / "hang").string(),
                        {"AHA_FAULT=stall:1:2", "AHA_MPI_TIMEOUT=5"});
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("error: rank 0 of 2: MoE dispatch counts timed out"), std::string::npos)
      << r.err;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 120.0);
  // One that hangs at the start of step 2: the other waits in the rollouts' first collective,
  // where the ranks agree on the number of prefill passes.
  CmdResult s = run_mpi("train --config " + cfg + " --set output_dir=" + (dir_ / "hang2").string(),
                        {"AHA_FAULT=hang:1:2", "AHA_MPI_TIMEOUT=5"});
  EXPECT_NE(s.rc, 0);
  EXPECT_NE(s.err.find("error: rank 0 of 2: prefill passes timed out"), std::string::npos)
      << s.err;
}

TEST_F(MpiEp, BadParallelKeysAreOneErrorLine) {
  expect_one_error_line(run_aha(pretrain("bad") + " --set parallel.ep=0"), "parallel.ep");
  // Two expert-parallel ranks need two ranks.
  expect_one_error_line(run_aha(pretrain("bad") + " --set parallel.ep=2"), "parallel.ep");
  expect_one_error_line(run_aha(pretrain("bad") + " --set parallel.pp=2"), "parallel: unknown key");
  // GRPO: what the sharded rollouts and scoring do not cover is refused, the key named.
  const std::string grpo = (dir_ / "g.json").string();
  std::ofstream(grpo) << R"({"model": ")" << (dir_ / "model").string() << R"(", "output_dir": ")"
                      << (dir_ / "g").string() << R"(", "data": {"train": "synthetic:addition"},
    "parallel": {"ep": 2}})";
  for (const char* key : {"grpo.speculative=true", "grpo.ref_ema=0.1", "grpo.ref_reset_every=2",
                          "grpo.max_staleness=1"}) {
    const std::string k(key);
    expect_one_error_line(run_aha("train --config " + grpo + " --set " + k),
                          "parallel.ep = 2 does not support " + k.substr(0, k.find('=')));
  }
  // A sharded student cannot run whole: ESFT scores every expert on every rank.
  const std::string cfg = (dir_ / "d.json").string();
  std::ofstream(cfg) << R"({"student": ")" << (dir_ / "model").string() << R"(", "output_dir": ")"
                     << (dir_ / "d").string() << R"(", "data": {"train": "unused.jsonl"}})";
  expect_one_error_line(
      run_aha("distill train --config " + cfg + " --set esft.enabled=true --set parallel.ep=2"),
      "parallel.ep shards the student's experts");
}

}  // namespace
}  // namespace aha::testing
