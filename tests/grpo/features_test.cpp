// Switchable GRPO features on a tiny MoE model: keep sampling mask, dynamic-sampling refill,
// process supervision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>

#include "aha/core/error.h"
#include "aha/grpo/rollouts.h"
#include "aha/grpo/trainer.h"
#include "aha/policy/esft.h"
#include "aha/runlog/run_db.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

using namespace testing_tiny;

Json one_step(const Json& raw, const rewards::RewardRegistry& reg) {
  Json last;
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run([&](const StepReport& r) { last = r.metrics; });
  return last;
}

// data.eval every grpo.eval_every steps into the step's metrics; keep_checkpoints keeps the
// newest N and the best by eval pass@1, and run.db lists exactly the checkpoints on disk.
TEST(Features, EvalDuringTrainingAndCheckpointHygiene) {
  auto reg = registry();
  const std::string out = fresh_dir("evalkeep");
  Json raw = base_config(out);
  raw["data"]["eval"] = "synthetic:arithmetic";
  raw["grpo"]["steps"] = 5;
  raw["grpo"]["save_every"] = 1;
  raw["grpo"]["eval_every"] = 2;
  raw["grpo"]["eval_n"] = 2;
  raw["grpo"]["eval_size"] = 6;
  raw["grpo"]["keep_checkpoints"] = 1;
  raw["accuracy_reward"] = "sevens";
  std::vector<Json> steps;
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run([&](const StepReport& r) {
    steps.push_back(r.metrics);
  });
  ASSERT_EQ(steps.size(), 5u);
  for (int s : {1, 3}) EXPECT_FALSE(steps[s - 1].contains("eval/pass@1")) << s;
  for (int s : {2, 4}) {  // steps 2 and 4, and the last (5)
    ASSERT_TRUE(steps[s - 1].contains("eval/pass@1")) << steps[s - 1].dump();
    EXPECT_TRUE(steps[s - 1].contains("eval/pass@2"));
    EXPECT_TRUE(steps[s - 1].contains("eval/reward/sevens"));
  }
  ASSERT_TRUE(steps[4].contains("eval/pass@1"));
  std::vector<int64_t> on_disk;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) == 0) on_disk.push_back(std::stoll(n.substr(11)));
  }
  std::sort(on_disk.begin(), on_disk.end());
  ASSERT_FALSE(on_disk.empty());
  EXPECT_LE(on_disk.size(), 2u);  // the newest, and the best by eval when that is another
  EXPECT_EQ(on_disk.back(), 5);
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  std::vector<int64_t> in_db;
  for (const Json& r : db->query("SELECT step FROM checkpoints ORDER BY step")) {
    in_db.push_back(r["step"].get<int64_t>());
  }
  EXPECT_EQ(in_db, on_disk);
  // Without data.eval, eval_every is a config error.
  Json bad = base_config(fresh_dir("evalbad"));
  bad["grpo"]["eval_every"] = 2;
  EXPECT_THROW(TrainConfig::from_json(bad), Error);
}

// Sampler/trainer IS correction. Sampled here (same engine, temperature 1): rho is 1 up to
// float rounding, nothing truncated. From a rollout file whose logprobs are shifted by delta
// (another engine): rho = exp(-delta) on every token, truncated by TIS above the cap, masked by
// MIS outside [1/cap, cap].
TEST(Features, ImportanceSamplingCorrection) {
  auto reg = registry();
  const std::string a = fresh_dir("is_online");
  Json raw = base_config(a);
  raw["grpo"]["steps"] = 1;
  raw["grpo"]["save_every"] = 1;
  raw["grpo"]["is_correction"] = "tis";
  Json m = one_step(raw, reg);
  ASSERT_TRUE(m.contains("is/mismatch_k1")) << m.dump();
  EXPECT_LT(std::abs(m["is/mismatch_k1"].get<double>()), 1e-4);
  EXPECT_EQ(m["is/truncated_frac"].get<double>(), 0.0);
  const std::string file = a + "/step1.jsonl";
  {
    std::ofstream f(file);
    ASSERT_GT(export_step(a + "/run.db", 1, false, f), 0);
  }
  auto shifted = [&](double delta) {
    std::ifstream in(file);
    const std::string out = file + std::to_string(delta) + ".jsonl";
    std::ofstream o(out);
    for (std::string line; std::getline(in, line);) {
      Json j = Json::parse(line);
      for (auto& v : j["old_logprobs"]) v = v.get<double>() + delta;
      o << j.dump() << "\n";
    }
    return out;
  };
  struct Case {
    const char* mode;
    double delta, cap;
    const char* metric;
    double frac;
  } cases[] = {{"tis", -1.0, 2.0, "is/truncated_frac", 1.0},   // rho = e: above the cap
               {"tis", 0.5, 2.0, "is/truncated_frac", 0.0},    // rho = 0.61: kept as is
               {"mis", 0.5, 1.5, "is/masked_frac", 1.0},       // below 1/cap: masked
               {"mis", -0.2, 1.5, "is/masked_frac", 0.0}};
  for (const Case& c : cases) {
    Json rb = raw;
    // The policy that sampled step 1 (before its update): the file's logprobs are its own.
    rb["output_dir"] = fresh_dir(std::string("is_file_") + c.mode + std::to_string(c.delta));
    rb["rollouts"] = shifted(c.delta);
    rb["grpo"]["is_correction"] = c.mode;
    rb["grpo"]["is_cap"] = c.cap;
    Json mm = one_step(rb, reg);
    const std::string what = std::string(c.mode) + " delta " + std::to_string(c.delta);
    ASSERT_TRUE(mm.contains(c.metric)) << what << " " << mm.dump();
    EXPECT_NEAR(mm[c.metric].get<double>(), c.frac, 1e-9) << what;
    EXPECT_NEAR(mm["is/mismatch_k1"].get<double>(), c.delta, 1e-3) << what;
  }
}

// One update from the weights that sampled takes pi_old from the update's own forward: only the
// completions that do not learn are scored by a forward of their own. Two updates score them all
// first.
TEST(Features, OneUpdateTakesPiOldFromItsOwnForward) {
  auto reg = registry();
  Json raw = base_config(fresh_dir("old_in_update"));
  raw["grpo"]["steps"] = 1;
  raw["grpo"]["num_iterations"] = 1;
  raw["grpo"]["minibatch_size"] = 0;
  const Json one = one_step(raw, reg);
  raw["output_dir"] = fresh_dir("old_in_update_two");
  raw["grpo"]["num_iterations"] = 2;
  const Json two = one_step(raw, reg);
  const int64_t all = 4 * 6;  // prompts_per_step x group_size, none empty
  ASSERT_TRUE(one.contains("pi_old_forwards")) << one.dump();
  EXPECT_GT(one["sequences"].get<int64_t>(), 0) << "a step with nothing to learn proves nothing";
  EXPECT_EQ(one["pi_old_forwards"].get<int64_t>(), all - one["sequences"].get<int64_t>());
  EXPECT_EQ(two["pi_old_forwards"].get<int64_t>(), all);
  EXPECT_EQ(one["ratio_mean"].get<double>(), 1.0) << "pi_old is the update's own forward";
}

// grpo.micro_batch_size: a minibatch's forward and backward in parts whose gradients add up
// to the whole minibatch's (the same loss, KL and gradient norm up to the order of float sums),
// for the sequence- and the token-weighted aggregations; keys it cannot serve are refused.
TEST(Features, MicroBatchesSumToTheMinibatchGradient) {
  auto reg = registry();
  for (const char* agg : {"seq-mean-token-mean", "token-mean"}) {
    Json raw = base_config(fresh_dir("micro_whole"));
    raw["grpo"]["steps"] = 1;
    raw["grpo"]["loss_agg"] = agg;
    const Json whole = one_step(raw, reg);
    raw["output_dir"] = fresh_dir("micro_parts");
    raw["grpo"]["micro_batch_size"] = 5;  // minibatches of 12 as 5 + 5 + 2
    const Json parts = one_step(raw, reg);
    ASSERT_GT(whole["sequences"].get<int64_t>(), 5) << "the minibatch must split";
    EXPECT_GT(whole["grad_norm"].get<double>(), 0.0) << agg;
    for (const char* key : {"loss", "kl", "grad_norm", "ratio_mean", "entropy", "pg_loss"}) {
      const double a = whole[key].get<double>(), b = parts[key].get<double>();
      EXPECT_NEAR(a, b, 1e-5 * (1.0 + std::abs(a))) << agg << " " << key;
    }
    EXPECT_EQ(whole["updates"], parts["updates"]);
  }
  Json raw = base_config(fresh_dir("micro_bad"));
  raw["grpo"]["micro_batch_size"] = 4;
  raw["grpo"]["mtp_weight"] = 0.1;
  try {
    TrainConfig::from_json(raw);
    ADD_FAILURE() << "micro_batch_size with mtp_weight was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grpo.micro_batch_size"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("grpo.mtp_weight"), std::string::npos) << e.what();
  }
  raw["grpo"].erase("mtp_weight");
  raw["grpo"]["micro_batch_size"] = -1;
  EXPECT_THROW(TrainConfig::from_json(raw), Error);
}

TEST(Features, KeepSamplingMaskMatchesTheSamplerLogprobs) {
  auto reg = registry();
  Json raw = base_config(fresh_dir("keepmask"));
  raw["grpo"]["steps"] = 1;
  raw["grpo"]["keep_sampling_mask"] = true;
  raw["sampling"]["top_k"] = 5;
  raw["sampling"]["top_p"] = 0.9;
  raw["sampling"]["temperature"] = 0.8;
  Json m = one_step(raw, reg);
  // Training's old logprobs, renormalised over the kept sets, are the sampling distribution's.
  ASSERT_TRUE(m.contains("logprob_mismatch")) << m.dump();
  EXPECT_LT(m["logprob_mismatch"].get<double>(), 1e-4);
  EXPECT_GT(m["updates"].get<int>(), 0);
}

// Sevens for prompts whose text has an even length, 0 for the others: half the groups teach
// nothing and dynamic sampling must replace them.
class HalfFlatReward : public rewards::RewardFunction {
 public:
  rewards::RewardResult score(const rewards::Sample& s) const override {
    if (s.prompt.size() % 2 == 1 || s.completion.empty()) return {0.0, Json::object()};
    double n = 0;
    for (char ch : s.completion) n += ch == '7';
    return {n / double(s.completion.size()), Json::object()};
  }
};

TEST(Features, DynamicSamplingRefillsFlatGroups) {
  auto reg = registry();
  reg.add("half_flat", [](const Json&) { return std::make_unique<HalfFlatReward>(); });
  const std::string out = fresh_dir("dynsample");
  Json raw = base_config(out);
  raw["rewards"] = Json::array({Json{{"name", "half_flat"}}});
  raw["grpo"]["steps"] = 1;
  raw["grpo"]["dynamic_sampling"] = true;
  raw["grpo"]["dynamic_sampling_max_rounds"] = 8;
  Json m = one_step(raw, reg);
  EXPECT_EQ(m["groups_useful"].get<int>(), 4) << m.dump();
  EXPECT_GE(m["sampling_rounds"].get<int>(), 2);
  EXPECT_GT(m["groups_dropped"].get<int>(), 0);
  EXPECT_EQ(m["sequences"].get<int>(), 4 * 6);  // only the useful groups are learned from
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  const int64_t logged = db->query("SELECT COUNT(*) AS n FROM rollouts")[0]["n"];
  EXPECT_EQ(logged, (4 + m["groups_dropped"].get<int64_t>()) * 6);
  // Every learned group has unequal rewards; dropped ones carry no token record.
  auto flat_learned = db->query(
      "SELECT r.group_index FROM rollouts r JOIN rollout_tokens t ON t.rollout_id = r.id "
      "GROUP BY r.group_index HAVING MAX(r.reward) = MIN(r.reward)");
  EXPECT_TRUE(flat_learned.empty());
}

// A rollout file whose completions each carry one step that ends at their last token: process
// supervision then equals outcome supervision, update for update. Steps elsewhere differ.
std::string write_file(const std::string& dir, bool steps_at_end) {
  const std::string path = dir + ".jsonl";
  std::ofstream f(path);
  const double rewards[] = {1.0, 0.0, 0.5, 0.2};
  for (int i = 0; i < 4; ++i) {
    Json j = {{"prompt_id", "p"}, {"prompt_ids", {5, 6, 7}}, {"completion_ids", {10 + i, 20, 30 + i, 40}},
              {"reward", rewards[i]}};
    j["step_rewards"] = steps_at_end ? Json::array({Json::array({4, rewards[i]})})
                                     : Json::array({Json::array({2, rewards[i]}), Json::array({4, 1.0 - rewards[i]})});
    f << j.dump() << "\n";
  }
  return path;
}

std::vector<float> replay(const std::string& name, const std::string& advantage, bool steps_at_end) {
  auto reg = registry();
  const std::string out = fresh_dir(name);
  Json raw = base_config(out);
  raw["rollouts"] = write_file(out, steps_at_end);
  raw["grpo"] = {{"steps", 1}, {"advantage", advantage}, {"beta", 0.0}};
  raw["optimizer"] = {{"kind", "sgd"}};
  raw["schedule"] = {{"lr", 0.1}};
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run();
  return policy::load_model<float>(out + "/checkpoint-1")->params();
}

TEST(Features, ProcessSupervisionReducesToOutcomeWithOneFinalStep) {
  const auto outcome = replay("outcome", "grpo", true);
  const auto process = replay("process", "process", true);
  const auto stepped = replay("stepped", "process", false);
  const auto base = policy::load_model<float>(tiny_checkpoint())->params();
  double same = 0, differ = 0, moved = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    same = std::max(same, double(std::abs(outcome[i] - process[i])));
    differ = std::max(differ, double(std::abs(stepped[i] - outcome[i])));
    moved = std::max(moved, double(std::abs(outcome[i] - base[i])));
  }
  EXPECT_GT(moved, 1e-4);
  EXPECT_LT(same, 1e-7);
  EXPECT_GT(differ, 1e-5);
}

}  // namespace
}  // namespace aha::grpo

namespace aha::grpo {
namespace {

TEST(Features, EsftTrainsOnlyTheSelectedExperts) {
  auto reg = registry();
  const std::string out = fresh_dir("esft");
  Json raw = base_config(out);
  raw["grpo"]["steps"] = 2;
  raw["grpo"]["esft"] = {{"share", 0.5}, {"include_shared", false}, {"prompts", 16}};
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run();
  const Json sel_json = load_json_file(out + "/esft_selection.json");
  const policy::EsftSelection sel = policy::EsftSelection::from_json(sel_json);
  auto before = policy::load_model<float>(tiny_checkpoint());
  auto after = policy::load_model<float>(out + "/checkpoint-2");
  const std::vector<uint8_t> mask = policy::trainable_mask(*before, sel);
  int moved = 0, frozen_moved = 0, trainable = 0;
  const auto& entries = before->table().entries();
  for (size_t k = 0; k < entries.size(); ++k) {
    const auto& e = entries[k];
    bool changed = false;
    for (size_t i = 0; i < e.numel && !changed; ++i) {
      changed = before->params()[e.offset + i] != after->params()[e.offset + i];
    }
    trainable += mask[k];
    if (mask[k]) moved += changed;
    if (!mask[k] && e.trainable) frozen_moved += changed;
  }
  EXPECT_GT(trainable, 0);
  EXPECT_GT(moved, 0);
  EXPECT_EQ(frozen_moved, 0) << "a frozen tensor changed";
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  auto ev = db->query("SELECT message FROM events WHERE kind = 'esft'");
  ASSERT_EQ(ev.size(), 1u);
  const Json report = Json::parse(ev[0]["message"].get<std::string>());
  EXPECT_LT(report["trainable_share"].get<double>(), 0.5);
  EXPECT_GT(report["memory_saved_bytes"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace aha::grpo
