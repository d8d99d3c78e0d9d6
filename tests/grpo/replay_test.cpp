// Rollout files: one SGD step from a hand-made file equals an independent PyTorch autograd
// reference; replaying an exported step from the previous checkpoint reproduces the online
// update; bad files are clear errors naming the line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "aha/core/error.h"
#include "aha/core/safetensors.h"
#include "aha/grpo/rollouts.h"
#include "aha/grpo/trainer.h"
#include "aha/runlog/run_db.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

using namespace testing_tiny;

const std::string kData = AHA_TEST_DATA_DIR;

// The largest |a - b| over two parameter sets of the same layout.
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

TEST(Replay, OneSgdStepMatchesTorchAutograd) {
  // Config of tests/reference/gen_grpo_replay.py.
  const std::string out = fresh_dir("torch_replay");
  Json raw = {{"model", kData + "/golden/deepseek_v3"},
              {"output_dir", out},
              {"rollouts", kData + "/grpo_replay/rollouts.jsonl"},
              {"grpo", {{"steps", 1}, {"beta", 0.04}, {"eps_low", 0.2}, {"eps_high", 0.28},
                        {"kl_estimator", "k3"}}},
              {"optimizer", {{"kind", "sgd"}, {"max_grad_norm", 0.0}}},
              {"schedule", {{"lr", 0.5}}}};
  Trainer(TrainConfig::from_json(raw), raw, false).run();
  auto before = policy::load_model<float>(kData + "/golden/deepseek_v3");
  auto after = policy::load_model<float>(out + "/checkpoint-1");
  TensorArchive expected(kData + "/grpo_replay/expected.safetensors");
  const Json meta = load_json_file(kData + "/grpo_replay/expected.json");
  double worst = 0, moved = 0;
  for (const auto& e : after->table().entries()) {
    ASSERT_TRUE(expected.contains(e.name)) << e.name;
    std::vector<float> want(e.numel);
    expected.read(e.name, e.shape, want.data());
    for (size_t i = 0; i < e.numel; ++i) {
      const double got = after->params()[e.offset + i];
      worst = std::max(worst, std::abs(got - want[i]));
      moved = std::max(moved, std::abs(got - before->params()[e.offset + i]));
    }
  }
  // The step moves weights by up to ~0.26; fp32 forward/backward against fp64 agrees to ~1e-6.
  EXPECT_NEAR(moved, meta["max_update"].get<double>(), 1e-4);
  EXPECT_GT(moved, 0.05);
  EXPECT_LT(worst, 2e-5) << "updated weights differ from the PyTorch reference";
  std::printf("max |aha - torch| = %.3g over updates up to %.3g\n", worst, moved);
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  auto steps = db->query("SELECT json_extract(metrics, '$.loss') AS loss FROM steps");
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_NEAR(steps[0]["loss"].get<double>(), meta["loss"].get<double>(), 1e-5);
}

// Trains two steps with `extra` merged into the grpo config, exports step 2 and replays it from
// checkpoint 1: the replayed update must equal the online one. Returns the online run's dir.
std::string expect_exported_step_replays(const std::string& name, const Json& sampling,
                                  const Json& grpo_extra, const std::vector<std::string>& keys) {
  auto reg = registry();
  const std::string a = fresh_dir(name + "_online"), b = fresh_dir(name + "_replayed");
  Json ra = base_config(a);
  ra["grpo"]["steps"] = 2;
  ra["grpo"]["save_every"] = 1;
  ra["grpo"].update(grpo_extra);
  ra["sampling"].update(sampling);
  ra["optimizer"] = {{"kind", "sgd"}};
  ra["schedule"] = {{"lr", 0.05}};
  Trainer(TrainConfig::from_json(ra), ra, false, &reg).run();
  const std::string file = a + "/step2.jsonl";
  {
    std::ofstream f(file);
    EXPECT_GT(export_step(a + "/run.db", 2, true, f), 0);
  }
  std::string first_line;
  std::getline(std::ifstream(file) >> std::ws, first_line);
  const Json j = Json::parse(first_line);
  for (const std::string& k : keys) EXPECT_TRUE(j.contains(k)) << k;
  Json rb = ra;
  rb["model"] = a + "/checkpoint-1";
  rb["reference"] = tiny_checkpoint();
  rb["output_dir"] = b;
  rb["rollouts"] = file;
  rb["grpo"]["steps"] = 1;
  Trainer(TrainConfig::from_json(rb), rb, false, &reg).run();
  auto prev = policy::load_model<float>(a + "/checkpoint-1");
  auto online = policy::load_model<float>(a + "/checkpoint-2");
  auto replayed = policy::load_model<float>(b + "/checkpoint-1");
  EXPECT_GT(max_diff(online->params(), prev->params()), 1e-3) << "the step must move the weights";
  EXPECT_LT(max_diff(online->params(), replayed->params()), 1e-6);
  return a;
}

TEST(Replay, ExportedStepReproducesTheOnlineUpdate) {
  expect_exported_step_replays(
      "routing", Json::object(), {{"keep_routing", true}},
      {"prompt_ids", "completion_ids", "old_logprobs", "ref_logprobs", "advantage", "routed_experts"});
}

// Keep sampling mask: the kept sets go into run.db and the export, so the replayed step
// renormalises over the same sets (without them the update differs: the file would carry no
// sampling_mask and the trainer would use the whole vocabulary).
TEST(Replay, ExportedKeepSamplingMaskStepReplays) {
  const std::string a = expect_exported_step_replays(
      "kept", {{"top_k", 6}, {"top_p", 0.9}}, {{"keep_sampling_mask", true}},
      {"completion_ids", "old_logprobs", "sampling_mask"});
  auto db = runlog::RunDb::open_readonly(a + "/run.db");
  auto rows = db->read_rollouts(2);
  ASSERT_FALSE(rows.empty());
  size_t masked = 0;
  for (const auto& r : rows) {
    if (r.completion_ids.empty()) continue;
    ASSERT_EQ(r.kept_ids.size(), r.completion_ids.size());
    for (size_t t = 0; t < r.kept_ids.size(); ++t) {
      const auto& k = r.kept_ids[t];
      if (k.empty()) continue;
      ++masked;
      EXPECT_LE(k.size(), 6u);
      EXPECT_TRUE(std::binary_search(k.begin(), k.end(), r.completion_ids[t]));
    }
  }
  EXPECT_GT(masked, 0u) << "top-k 6 must leave kept sets in run.db";
}

// Writes lines to a file and reads it as a rollout file of a vocab-50, 2-MoE-layer model.
std::vector<Rollout> read_lines(const std::vector<std::string>& lines) {
  static int n = 0;
  const std::string path = fresh_dir("file" + std::to_string(++n)) + ".jsonl";
  std::ofstream(path) << [&] {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }();
  RolloutLimits lim;
  lim.vocab = 50;
  lim.max_positions = 16;
  lim.moe_layers = 2;
  lim.experts = 4;
  lim.experts_per_tok = 2;
  return read_rollout_file(path, lim);
}

std::string error_of(const std::vector<std::string>& lines) {
  try {
    read_lines(lines);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RolloutFile, BadLinesAreClearErrors) {
  const std::string ok = R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3,4],"reward":1})";
  const std::string ok2 = R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[5],"reward":0})";
  EXPECT_EQ(read_lines({ok, ok2}).size(), 2u);
  struct Case {
    std::string line, message;
  };
  const std::vector<Case> cases = {
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3,50],"reward":1})", "outside the vocabulary"},
      {R"({"prompt_id":"p","prompt_ids":[-1],"completion_ids":[3],"reward":1})", "outside the vocabulary"},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3,4],"reward":1,"old_logprobs":[-1]})", "has 1 values for 2 completion tokens"},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3,4],"reward":1,"ref_logprobs":[-1,0.5]})", "not a log-probability"},
      {R"({"prompt_id":"p","prompt_ids":[1,2,3,4,5,6,7,8,9,10],"completion_ids":[1,2,3,4,5,6,7],"reward":1})", "longer than the model's context"},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[],"reward":1})", "\"completion_ids\" is empty"},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3]})", "missing \"reward\""},
      {R"({"prompt_ids":[1,2],"completion_ids":[3],"reward":1})", "missing \"prompt_id\""},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3],"reward":1,"rewrad":2})", "unknown key \"rewrad\""},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3],"reward":1,"routed_experts":[[[0,1]],[[0,1]]]})", "MoE layers"},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3],"reward":1,"routed_experts":[[[0,1],[0,9]],[[0,1],[2,3]]]})", "names expert 9"},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3],"reward":1,"sampling_mask":[[4,5]]})", "does not contain the sampled token"},
      {R"({"prompt_id":"p","prompt_ids":[1,2],"completion_ids":[3,4],"reward":1,"step_rewards":[[2,1],[1,0]]})", "ends must ascend"},
      {"not json", "not valid JSON"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of({ok, c.line});
    EXPECT_NE(e.find(c.message), std::string::npos) << c.line << " -> " << e;
    EXPECT_NE(e.find(":2:"), std::string::npos) << "the error names the line: " << e;
  }
  // A lone completion has no group baseline unless it brings its own advantage.
  EXPECT_NE(error_of({ok}).find("single completion"), std::string::npos);
  EXPECT_EQ(read_lines({R"({"prompt_id":"p","prompt_ids":[1],"completion_ids":[3],"advantage":0.5})"}).size(), 1u);
}

TEST(RolloutFile, JsonRoundTrip) {
  const std::string line =
      R"({"prompt_id":"q","prompt_ids":[1,2],"completion_ids":[3,4],"reward":0.25,"advantage":-1.5,)"
      R"("old_logprobs":[-0.5,-1.25],"ref_logprobs":[-0.75,-2],"sampling_mask":[[3,7],[]],)"
      R"("routed_experts":[[[0,1],[2,3]],[[1,2],[0,3]],[[3,0],[1,1]]],"step_rewards":[[1,0.5],[2,1]]})";
  auto rs = read_lines({line});
  ASSERT_EQ(rs.size(), 1u);
  const Rollout& r = rs[0];
  EXPECT_EQ(r.routing.size(), 2u);
  EXPECT_EQ(r.routing[1], (std::vector<int32_t>{2, 3, 0, 3, 1, 1}));
  EXPECT_EQ(r.kept_ids[0], (std::vector<int32_t>{3, 7}));
  EXPECT_EQ(r.step_ends, (std::vector<int64_t>{1, 2}));
  // Writing and reading again gives the same rollout.
  auto again = read_lines({rollout_to_json(r).dump()});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].routing, r.routing);
  EXPECT_EQ(again[0].old_logprobs, r.old_logprobs);
  EXPECT_EQ(again[0].ref_logprobs, r.ref_logprobs);
  EXPECT_EQ(again[0].kept_ids, r.kept_ids);
  EXPECT_EQ(*again[0].advantage, -1.5);
}

}  // namespace
}  // namespace aha::grpo
