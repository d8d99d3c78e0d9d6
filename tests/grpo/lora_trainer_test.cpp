// GRPO with LoRA on the tiny MoE model: the base stays bit for bit while the adapters learn,
// checkpoints hold the merged model and the adapters in the PEFT layout, a resumed run equals
// a straight one bit for bit, and an adapter directory starts a run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "aha/core/error.h"
#include "aha/grpo/trainer.h"
#include "aha/policy/checkpoint.h"
#include "aha/runlog/run_db.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

namespace fs = std::filesystem;
using namespace testing_tiny;

Json lora_config(const std::string& out) {
  Json raw = base_config(out);
  raw["lora"] = Json{{"rank", 4},
                     {"alpha", 8},
                     {"target_modules", {"q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa",
                                         "kv_b_proj", "o_proj", "gate_proj", "up_proj",
                                         "down_proj"}}};
  raw["schedule"]["lr"] = 1e-2;  // adapters start at zero effect and take a larger step
  return raw;
}

std::string bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<Json> step_metrics(const std::string& out) {
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  std::vector<Json> m;
  for (const auto& row : db->query("SELECT metrics FROM steps ORDER BY step")) {
    m.push_back(Json::parse(row["metrics"].get<std::string>()));
  }
  return m;
}

// The adapters learn (the loss and the merged weights move) while the base in memory keeps its
// bits; checkpoint-N holds the merged W + s B A and adapter/ the PEFT files.
TEST(LoraTrainer, BaseStaysFrozenWhileAdaptersLearn) {
  auto reg = registry();
  const std::string out = fresh_dir("lora_frozen");
  Json raw = lora_config(out);
  raw["grpo"]["steps"] = 6;
  raw["grpo"]["save_every"] = 0;
  const auto base = policy::load_model<float>(tiny_checkpoint());
  Trainer t(TrainConfig::from_json(raw), raw, false, &reg);
  t.run();
  const auto& p = t.policy().params();
  ASSERT_GT(p.size(), base->params().size());
  EXPECT_TRUE(std::equal(base->params().begin(), base->params().end(), p.begin()))
      << "a frozen base weight changed";
  size_t b_nonzero = 0;
  for (const auto& e : t.policy().table().entries()) {
    if (!e.adapter || !e.name.ends_with("lora_B.weight")) continue;
    for (size_t i = 0; i < e.numel; ++i) b_nonzero += p[e.offset + i] != 0.0f;
  }
  EXPECT_GT(b_nonzero, 0u) << "the adapters did not learn";
  const std::vector<Json> m = step_metrics(out);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_NE(m.front()["loss"], m.back()["loss"]);
  const std::string final_dir = out + "/checkpoint-6";
  auto merged = policy::load_model<float>(final_dir);
  ASSERT_EQ(merged->params().size(), base->params().size());
  EXPECT_FALSE(merged->params() == base->params()) << "the export merged nothing";
  EXPECT_TRUE(fs::exists(fs::path(final_dir) / "adapter" / "adapter_config.json"));
  EXPECT_TRUE(fs::exists(fs::path(final_dir) / "adapter" / "adapter_model.safetensors"));
}

// 2 steps, kill, resume, 2 more: the adapters, the optimizer moments and every step's metrics
// equal a straight 4-step run bit for bit, also with LoRA dropout (its masks are a function of
// the seed, step, minibatch and micro-batch), and with the minibatches in micro-batches.
// Dropout changes the update's losses, not the sampling.
TEST(LoraTrainer, ResumeEqualsStraightRun) {
  auto reg = registry();
  std::vector<std::vector<Json>> straight;
  for (const auto& [dropout, micro] : {std::pair{0.0, 0}, {0.1, 0}, {0.1, 5}}) {
    const std::string tag =
        std::string(dropout > 0 ? "_dropout" : "") + (micro > 0 ? "_micro" : "");
    const std::string a = fresh_dir("lora_straight" + tag), b = fresh_dir("lora_resumed" + tag);
    Json ra = lora_config(a), rb = lora_config(b);
    ra["lora"]["dropout"] = rb["lora"]["dropout"] = dropout;
    ra["grpo"]["micro_batch_size"] = rb["grpo"]["micro_batch_size"] = micro;
    Trainer(TrainConfig::from_json(ra), ra, false, &reg).run();
    Trainer(TrainConfig::from_json(rb), rb, false, &reg).run({}, 2);
    {
      Trainer resumed(TrainConfig::from_json(rb), rb, true, &reg);
      EXPECT_EQ(resumed.step(), 2);
      resumed.run();
    }
    for (const char* f : {"adapter/adapter_model.safetensors", "optimizer.safetensors",
                          "model.safetensors"}) {
      EXPECT_EQ(bytes(a + "/checkpoint-4/" + f), bytes(b + "/checkpoint-4/" + f))
          << f << " after 2 + 2 steps differs from 4 steps" << tag;
    }
    const std::vector<Json> ma = step_metrics(a), mb = step_metrics(b);
    ASSERT_EQ(ma.size(), 4u);
    ASSERT_EQ(mb.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(ma[i]["loss"], mb[i]["loss"]) << i << tag;
      EXPECT_EQ(ma[i]["reward_mean"], mb[i]["reward_mean"]) << i << tag;
    }
    straight.push_back(ma);
  }
  // Step 1 samples with the same (initial) weights either way; its update sees dropped inputs.
  EXPECT_EQ(straight[0][0]["reward_mean"], straight[1][0]["reward_mean"]);
  EXPECT_NE(straight[0][0]["loss"], straight[1][0]["loss"]);
}

// With a fixed reference, the reference is the base: the policy with its adapters off, not a
// second copy. The reference logprobs logged at step 3 (adapters moved by then) equal the base
// checkpoint's own on the same sequences, and differ from the adapted policy's.
TEST(LoraTrainer, ReferenceIsTheBaseWithAdaptersOff) {
  auto reg = registry();
  const std::string out = fresh_dir("lora_ref_base");
  Json raw = lora_config(out);
  raw["grpo"]["steps"] = 3;
  ASSERT_GT(raw["grpo"]["beta"].get<double>(), 0.0);
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run();
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  const std::vector<Rollout> rs = db->read_rollouts(3);
  ASSERT_FALSE(rs.empty());
  std::vector<std::vector<int32_t>> seqs;
  for (const Rollout& r : rs) {
    seqs.push_back(r.prompt_ids);
    seqs.back().insert(seqs.back().end(), r.completion_ids.begin(), r.completion_ids.end());
  }
  const policy::Batch batch = policy::Batch::from_sequences(seqs);
  auto base = policy::load_model<float>(tiny_checkpoint());
  policy::Activations<float> acts;
  base->forward(batch, policy::ForwardOptions{}, acts);
  double max_ref = 0, max_old = 0;
  for (size_t k = 0; k < rs.size(); ++k) {
    const int64_t off = batch.seq_starts[k] + static_cast<int64_t>(rs[k].prompt_ids.size()) - 1;
    ASSERT_EQ(rs[k].ref_logprobs.size(), rs[k].completion_ids.size());
    for (int64_t j = 0; j < rs[k].n(); ++j) {
      const double b = acts.logprob[off + j];
      max_ref = std::max(max_ref, std::abs(double(rs[k].ref_logprobs[j]) - b));
      max_old = std::max(max_old, std::abs(double(rs[k].old_logprobs[j]) - b));
    }
  }
  EXPECT_LT(max_ref, 1e-5) << "the reference is not the base";
  EXPECT_GT(max_old, 1e-3) << "the adapters did not move the policy away from the base";
}

// A reference reset copies the policy's function: with adapters, the merged weights.
TEST(LoraTrainer, ReferenceResetTakesTheMergedPolicy) {
  auto reg = registry();
  const std::string out = fresh_dir("lora_ref_reset");
  Json raw = lora_config(out);
  raw["grpo"]["steps"] = 2;
  raw["grpo"]["ref_reset_every"] = 2;
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run();
  auto merged = policy::load_model<float>(out + "/checkpoint-2");
  auto ref = policy::load_model<float>(out + "/checkpoint-2/reference");
  auto base = policy::load_model<float>(tiny_checkpoint());
  EXPECT_TRUE(ref->params() == merged->params());
  EXPECT_FALSE(ref->params() == base->params());
}

// lora.adapter starts a run from saved adapters: its first step's sampling sees them.
TEST(LoraTrainer, StartsFromAnAdapterDirectory) {
  auto reg = registry();
  const std::string a = fresh_dir("lora_first");
  Json ra = lora_config(a);
  ra["grpo"]["steps"] = 2;
  Trainer(TrainConfig::from_json(ra), ra, false, &reg).run();
  const std::string b = fresh_dir("lora_continued");
  Json rb = lora_config(b);
  rb["grpo"]["steps"] = 1;
  rb["lora"]["adapter"] = a + "/checkpoint-2/adapter";
  Trainer t(TrainConfig::from_json(rb), rb, false, &reg);
  auto saved = policy::load_model<float>(tiny_checkpoint(), t.policy().config().lora);
  policy::load_adapters(*saved, a + "/checkpoint-2/adapter");
  EXPECT_TRUE(saved->params() == t.policy().params());
  rb["lora"]["rank"] = 2;
  EXPECT_THROW(Trainer(TrainConfig::from_json(rb), rb, false, &reg), Error);
}

TEST(LoraTrainer, BadLoraKeysAreClearErrors) {
  Json raw = lora_config(fresh_dir("lora_bad"));
  raw["lora"]["rnak"] = 2;
  try {
    TrainConfig::from_json(raw);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("lora: unknown key 'rnak'"), std::string::npos) << what;
  }
  raw = lora_config(fresh_dir("lora_bad"));
  raw["lora"]["target_modules"] = {"k_proj"};  // an MLA model has none
  auto reg = registry();
  EXPECT_THROW(Trainer(TrainConfig::from_json(raw), raw, false, &reg), Error);
}

}  // namespace
}  // namespace aha::grpo
