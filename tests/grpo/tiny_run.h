// Shared by the GRPO tests: a tiny MoE checkpoint with a BPE tokenizer, a learnable reward
// ("sevens") and a base run config.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/tokenizer/bpe_trainer.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/presets.h"
#include "aha/rewards/reward.h"
#include "aha/runlog/run_db.h"

namespace aha::grpo::testing_tiny {

namespace fs = std::filesystem;

// Rewards completions for the share of their characters that are the digit 7: a random policy
// gets a little of it, and the policy can learn to get more.
class SevensReward : public rewards::RewardFunction {
 public:
  rewards::RewardResult score(const rewards::Sample& s) const override {
    if (s.completion.empty()) return {0.0, Json::object()};
    double n = 0;
    for (char ch : s.completion) n += ch == '7';
    return {n / double(s.completion.size()), Json::object()};
  }
};

// A tiny MoE checkpoint with a small BPE tokenizer, made once per test binary.
inline std::string tiny_checkpoint() {
  static std::string dir;
  if (!dir.empty()) return dir;
  fs::path root = fs::temp_directory_path() / ("aha_grpo_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "model");
  tokenizer::BpeTrainerOptions bo;
  bo.vocab_size = 300;
  tokenizer::BpeTrainer bt(bo);
  for (int i = 0; i < 400; ++i) bt.add_text("What is " + std::to_string(i) + " + 7? 77 777 " + std::to_string(i * 7));
  save_json_file((root / "model" / "tokenizer.json").string(), bt.finish());
  save_json_file((root / "model" / "tokenizer_config.json").string(), bt.tokenizer_config());
  Json cfg = policy::preset_config("tiny");
  cfg["vocab_size"] = 300;
  cfg["num_hidden_layers"] = 2;
  cfg["hidden_size"] = 64;
  cfg["eos_token_id"] = 1;
  policy::Model<float> m(policy::ModelConfig::from_json(cfg));
  m.init_random(1);
  policy::SaveOptions so;
  so.copy_tokenizer_from = (root / "model").string();
  policy::save_model(m, (root / "ckpt").string(), so);
  dir = (root / "ckpt").string();
  return dir;
}

inline Json base_config(const std::string& out) {
  return Json{{"model", tiny_checkpoint()},
              {"output_dir", out},
              {"seed", 3},
              {"data", {{"train", "synthetic:arithmetic"}, {"template", "{prompt}"}}},
              {"rewards", Json::array({Json{{"name", "sevens"}}})},
              {"sampling", {{"max_new_tokens", 12}}},
              {"grpo", {{"steps", 4}, {"prompts_per_step", 4}, {"group_size", 6}, {"beta", 0.01},
                        {"num_iterations", 2}, {"minibatch_size", 12}, {"save_every", 2}}},
              {"schedule", {{"lr", 3e-3}}}};
}

inline rewards::RewardRegistry registry() {
  rewards::RewardRegistry r = rewards::builtin_registry();
  r.add("sevens", [](const Json&) { return std::make_unique<SevensReward>(); });
  return r;
}

// Each step's metrics in the run.db of run directory dir, in step order.
inline std::vector<Json> step_metrics(const std::string& dir) {
  auto db = runlog::RunDb::open_readonly(dir + "/run.db");
  std::vector<Json> out;
  for (const Json& row : db->query("SELECT metrics FROM steps ORDER BY step")) {
    out.push_back(Json::parse(row.at("metrics").get<std::string>()));
  }
  return out;
}

inline std::string fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("aha_grpo_run_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

}  // namespace aha::grpo::testing_tiny
