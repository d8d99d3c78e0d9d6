// Asynchronous rollouts (grpo.max_staleness): step j is sampled with exactly the weights after
// update max(0, j - 1 - s), the run repeats bit for bit, a resume restores the steps sampled
// ahead, and run.db records each rollout's policy version.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "aha/core/error.h"
#include "aha/grpo/trainer.h"
#include "aha/policy/checkpoint.h"
#include "aha/runlog/run_db.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

namespace fs = std::filesystem;
using namespace testing_tiny;

// step -> the completions of that step's rollouts, in order (token ids as text).
std::map<int64_t, std::vector<std::string>> completions(const std::string& dir) {
  auto db = runlog::RunDb::open_readonly(dir + "/run.db");
  std::map<int64_t, std::vector<std::string>> out;
  for (int64_t step = 1; step <= 4; ++step) {
    for (const Rollout& r : db->read_rollouts(step)) {
      out[step].push_back(Json(r.completion_ids).dump());
    }
  }
  return out;
}

Json async_config(const std::string& dir, int staleness) {
  Json raw = base_config(dir);
  raw["grpo"]["max_staleness"] = staleness;
  raw["grpo"]["is_correction"] = "tis";
  return raw;
}

// With s = 1, steps 1 and 2 are sampled by the initial weights and step 3 by those after step 1.
// A synchronous run at lr 0 keeps the initial weights (and the same prompts and seeds), so it
// samples what the asynchronous run must sample at steps 1 and 2, and not at step 3.
TEST(AsyncRollouts, EachStepIsSampledByTheWeightsItsStalenessNames) {
  auto reg = registry();
  const std::string a = fresh_dir("async1"), frozen = fresh_dir("frozen");
  Json ra = async_config(a, 1);
  Json rf = base_config(frozen);
  rf["schedule"]["lr"] = 0.0;
  Trainer(TrainConfig::from_json(ra), ra, false, &reg).run();
  Trainer(TrainConfig::from_json(rf), rf, false, &reg).run();
  auto ca = completions(a), cf = completions(frozen);
  {  // a synchronous run samples every step with the trainer's own weights
    auto db = runlog::RunDb::open_readonly(frozen + "/run.db");
    for (const auto& row : db->query("SELECT metrics FROM steps")) {
      EXPECT_EQ(Json::parse(row.at("metrics").get<std::string>())["staleness"], 0);
    }
    EXPECT_EQ(db->read_rollouts(3).at(0).policy_version, 2);
  }
  EXPECT_EQ(ca[1], cf[1]);
  EXPECT_EQ(ca[2], cf[2]) << "step 2 must be sampled by the initial weights";
  EXPECT_NE(ca[3], cf[3]) << "step 3 must be sampled by the weights after step 1";

  auto db = runlog::RunDb::open_readonly(a + "/run.db");
  const std::vector<int64_t> want = {0, 0, 1, 2};
  for (int64_t step = 1; step <= 4; ++step) {
    for (const Rollout& r : db->read_rollouts(step)) {
      ASSERT_EQ(r.policy_version, want[step - 1]) << "step " << step;
    }
    Json m = Json::parse(
        db->query("SELECT metrics FROM steps WHERE step = " + std::to_string(step))[0]["metrics"]
            .get<std::string>());
    EXPECT_EQ(m["staleness"], step - 1 - want[step - 1]);
    EXPECT_TRUE(m.contains("time_wait_rollout"));
    EXPECT_TRUE(m.contains("is/truncated_frac"));
  }
}

// 2 + 2 steps equal 4: the checkpoint after step 2 carries step 3's rollouts (sampled by the
// weights after step 1, which it does not hold) and the data cursor past them.
TEST(AsyncRollouts, ResumeEqualsStraightRun) {
  auto reg = registry();
  // s = 1, s = 2, and s = 1 on LoRA adapters (the sampler needs the trainer's layout).
  for (const int variant : {1, 2, 3}) {
    const int s = variant == 2 ? 2 : 1;
    const std::string tag = std::to_string(variant);
    const std::string a = fresh_dir("async_straight" + tag), b = fresh_dir("async_resumed" + tag);
    Json ra = async_config(a, s), rb = async_config(b, s);
    if (variant == 3) {
      for (Json* r : {&ra, &rb}) (*r)["lora"] = Json{{"rank", 4}, {"alpha", 8.0}};
    }
    Trainer(TrainConfig::from_json(ra), ra, false, &reg).run();
    Trainer(TrainConfig::from_json(rb), rb, false, &reg).run({}, 2);
    ASSERT_TRUE(fs::exists(b + "/checkpoint-2/rollout_queue.json"));
    {
      Trainer resumed(TrainConfig::from_json(rb), rb, true, &reg);
      EXPECT_EQ(resumed.step(), 2);
      resumed.run();
    }
    auto wa = policy::load_model<float>(a + "/checkpoint-4");
    auto wb = policy::load_model<float>(b + "/checkpoint-4");
    EXPECT_TRUE(wa->params() == wb->params()) << "variant " << variant;
    EXPECT_EQ(completions(a), completions(b)) << "variant " << variant;
    const std::vector<Json> ma = step_metrics(a), mb = step_metrics(b);
    ASSERT_EQ(ma.size(), 4u);
    ASSERT_EQ(mb.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      for (const char* k : {"loss", "reward_mean", "is/mismatch_k1"}) {
        EXPECT_EQ(ma[i][k], mb[i][k]) << k << " at step " << i + 1 << ", variant " << variant;
      }
    }
  }
}

// Stale samples differ from the trainer's weights, and TIS sees it: the mismatch is rounding
// noise on the step sampled by the current weights (step 1) and not after.
TEST(AsyncRollouts, ImportanceCorrectionSeesTheStaleness) {
  auto reg = registry();
  const std::string a = fresh_dir("async_is");
  Json ra = async_config(a, 1);
  ra["grpo"]["save_every"] = 0;
  std::vector<Json> steps;
  Trainer(TrainConfig::from_json(ra), ra, false, &reg).run([&](const StepReport& r) {
    steps.push_back(r.metrics);
  });
  ASSERT_EQ(steps.size(), 4u);
  const double fresh = std::abs(steps[0]["is/mismatch_k1"].get<double>());
  const double stale = std::abs(steps[2]["is/mismatch_k1"].get<double>());
  EXPECT_LT(fresh, 1e-6);
  EXPECT_GT(stale, 1e-5) << "step 1: " << fresh;
}

TEST(AsyncRollouts, BadCombinationsAreClearErrors) {
  Json raw = async_config(fresh_dir("async_bad"), 9);
  EXPECT_THROW(TrainConfig::from_json(raw), Error);
  raw = async_config(fresh_dir("async_bad"), -1);
  EXPECT_THROW(TrainConfig::from_json(raw), Error);
  raw = async_config(fresh_dir("async_bad"), 1);
  raw["rollouts"] = "some.jsonl";
  try {
    TrainConfig::from_json(raw);
    FAIL() << "max_staleness with a rollout file must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grpo.max_staleness"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aha::grpo
