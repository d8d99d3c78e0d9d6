// grpo.mtp_weight: the MTP loss on the completions' policy tokens beside GRPO's. Its value at
// the first step equals the module's loss computed apart over the same rollouts, training it
// makes the module predict the policy's tokens, and a policy without the module is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "aha/core/error.h"
#include "aha/grpo/trainer.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/model.h"
#include "aha/policy/mtp.h"
#include "aha/runlog/run_db.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

namespace fs = std::filesystem;
using namespace testing_tiny;

// The tiny test policy with a depth-1 MTP module.
std::string mtp_checkpoint() {
  const fs::path dir = fs::path(tiny_checkpoint()).parent_path() / "mtp_model";
  if (fs::exists(dir / "model.safetensors")) return dir.string();
  Json cfg = load_json_file(tiny_checkpoint() + "/config.json");
  cfg["num_nextn_predict_layers"] = 1;
  policy::Model<float> m(policy::ModelConfig::from_json(cfg));
  m.init_random(4);
  policy::SaveOptions so;
  so.copy_tokenizer_from = tiny_checkpoint();
  policy::save_model(m, dir.string(), so);
  return dir.string();
}

// The mean -log p(completion token) of the MTP module over every completion token two or more
// positions into its sequence, recomputed from run.db's rollouts of `step` with `model`.
double mtp_loss_apart(const policy::Model<float>& model, const std::string& db_path, int step) {
  auto db = runlog::RunDb::open_readonly(db_path);
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> prompt_len;
  for (const Rollout& r : db->read_rollouts(step)) {
    seqs.push_back(r.prompt_ids);
    seqs.back().insert(seqs.back().end(), r.completion_ids.begin(), r.completion_ids.end());
    prompt_len.push_back(static_cast<int64_t>(r.prompt_ids.size()));
  }
  const policy::Batch batch = policy::Batch::from_sequences(seqs);
  policy::Activations<float> acts;
  model.forward(batch, policy::ForwardOptions{}, acts);
  policy::MtpActs<float> m;
  policy::mtp_forward(model.config(), *model.mtp(), model.params().data(), acts, m);
  double sum = 0;
  int64_t count = 0;
  for (size_t r = 0; r < m.src.size(); ++r) {
    // MTP row r sits at main row src[r] = (sequence start) + i and predicts token i + 2.
    const int64_t row = m.src[r];
    size_t s = 0;
    while (batch.seq_starts[s + 1] <= row) ++s;
    const int64_t i = row - batch.seq_starts[s];
    if (i + 2 < prompt_len[s] || m.targets[r] < 0) continue;
    sum -= double(m.logprob[r]);
    ++count;
  }
  return sum / double(count);
}

// A module trained beside GRPO learns to predict the policy's samples; one left alone does not.
TEST(MtpGrpo, LossEqualsTheModulesOwnAndTrainingItHelps) {
  auto reg = registry();
  std::vector<std::string> outs;
  std::vector<double> mtp;
  for (const double weight : {1.0, 0.0}) {
    outs.push_back(fresh_dir(weight > 0 ? "mtp_grpo" : "mtp_grpo_off"));
    Json raw = base_config(outs.back());
    raw["model"] = mtp_checkpoint();
    raw["grpo"]["mtp_weight"] = weight;
    raw["grpo"]["num_iterations"] = 1;
    raw["grpo"]["minibatch_size"] = 0;  // one update a step: step 1's loss is the initial model's
    raw["grpo"]["steps"] = 12;
    raw["grpo"]["save_every"] = 0;
    // Near-greedy samples: the token after next is (nearly) a function of the context, which
    // the module can learn; at temperature 1 a random policy's samples are noise to it.
    raw["sampling"]["temperature"] = 0.2;
    raw["schedule"]["lr"] = 1e-2;
    Trainer(TrainConfig::from_json(raw), raw, false, &reg).run([&](const StepReport& r) {
      if (weight > 0) mtp.push_back(r.metrics.at("mtp_loss").get<double>());
    });
  }
  ASSERT_EQ(mtp.size(), 12u);
  auto initial = policy::load_model<float>(mtp_checkpoint());
  const double apart = mtp_loss_apart(*initial, outs[0] + "/run.db", 1);
  EXPECT_NEAR(mtp[0], apart, 1e-4 * std::abs(apart)) << "step 1 against the module's own loss";
  auto trained = policy::load_model<float>(outs[0] + "/checkpoint-12");
  auto untrained = policy::load_model<float>(outs[1] + "/checkpoint-12");
  const double with = mtp_loss_apart(*trained, outs[0] + "/run.db", 12);
  const double without = mtp_loss_apart(*untrained, outs[1] + "/run.db", 12);
  EXPECT_LT(with, without - 0.5) << "module trained: " << with << ", left alone: " << without
                                 << " (per step: " << mtp.front() << " -> " << mtp.back() << ")";

  Json plain = base_config(fresh_dir("mtp_grpo_plain"));
  plain["grpo"]["mtp_weight"] = 1.0;
  try {
    Trainer(TrainConfig::from_json(plain), plain, false, &reg);
    ADD_FAILURE() << "a policy without an MTP module was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grpo.mtp_weight"), std::string::npos) << e.what();
  }
  plain["grpo"]["mtp_weight"] = -1.0;
  EXPECT_THROW(TrainConfig::from_json(plain), Error);
}

// grpo.speculative samples with the MTP module as the draft: greedy rollouts are the plain ones
// token for token, with the same recorded logprobs; a policy without the module is refused by
// the key's name.
TEST(MtpGrpo, SpeculativeRolloutsAreThePlainOnes) {
  auto reg = registry();
  std::vector<std::vector<Rollout>> runs;
  for (const bool speculative : {false, true}) {
    const std::string out = fresh_dir(speculative ? "mtp_spec" : "mtp_spec_off");
    Json raw = base_config(out);
    raw["model"] = mtp_checkpoint();
    raw["grpo"]["speculative"] = speculative;
    raw["grpo"]["steps"] = 2;
    raw["grpo"]["save_every"] = 0;
    raw["sampling"]["temperature"] = 0.0;
    Trainer(TrainConfig::from_json(raw), raw, false, &reg).run();
    auto db = runlog::RunDb::open_readonly(out + "/run.db");
    runs.push_back(db->read_rollouts(1));
    for (const Rollout& r : db->read_rollouts(2)) runs.back().push_back(r);
  }
  ASSERT_EQ(runs[0].size(), runs[1].size());
  ASSERT_FALSE(runs[0].empty());
  for (size_t i = 0; i < runs[0].size(); ++i) {
    EXPECT_EQ(runs[1][i].completion_ids, runs[0][i].completion_ids) << "rollout " << i;
    EXPECT_EQ(runs[1][i].sampled_logprobs, runs[0][i].sampled_logprobs) << "rollout " << i;
  }
  Json plain = base_config(fresh_dir("mtp_spec_plain"));
  plain["grpo"]["speculative"] = true;
  try {
    Trainer(TrainConfig::from_json(plain), plain, false, &reg).run();
    ADD_FAILURE() << "a policy without an MTP module was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grpo.speculative"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aha::grpo
