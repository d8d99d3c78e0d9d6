// Checkpoints load back bit-exact, in every dtype and sharded; bad configs and weights give
// clear errors; the optimizer and schedules behave as specified and resume exactly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/optimizer.h"
#include "aha/policy/presets.h"
#include "checkpoint_helpers.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::temp_dir;

TEST(Checkpoint, SaveLoadIsBitExact) {
  for (const Json& j : {testing::tiny_v3_json(), testing::tiny_v2_json(),
                        testing::tiny_llama_json(), testing::tiny_qwen2_json()}) {
    ModelConfig c = ModelConfig::from_json(j);
    Model<float> m(c);
    m.init_random(42);
    std::string dir = temp_dir(c.type_name());
    save_model(m, dir);
    auto back = load_model<float>(dir);
    EXPECT_EQ(back->params(), m.params()) << c.type_name();
    EXPECT_EQ(back->config().to_json(), c.to_json());
    EXPECT_TRUE(fs::exists(fs::path(dir) / "generation_config.json"));
    // Saving again over an existing checkpoint replaces it whole.
    m.params()[0] += 1.0f;
    save_model(m, dir);
    EXPECT_EQ(load_model<float>(dir)->params()[0], m.params()[0]);
  }
}

TEST(Checkpoint, ShardedAndHalfPrecision) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> m(c);
  m.init_random(7);
  std::string dir = temp_dir("shard");
  SaveOptions opts;
  opts.dtype = DType::kBF16;
  opts.max_shard_bytes = 4096;
  save_model(m, dir, opts);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "model.safetensors.index.json"));
  auto back = load_model<float>(dir);
  for (size_t i = 0; i < m.params().size(); ++i) {
    EXPECT_NEAR(back->params()[i], m.params()[i], std::abs(m.params()[i]) * 4e-3 + 1e-30);
  }
  EXPECT_EQ(load_model<float>(dir)->config().to_json()["torch_dtype"], "bfloat16");
}

TEST(Checkpoint, PresetSizes) {
  EXPECT_NEAR(Model<float>(ModelConfig::from_json(preset_config("tiny"))).n_params(), 1e6, 3e5);
  EXPECT_NEAR(Model<float>(ModelConfig::from_json(preset_config("small"))).n_params(), 1e7, 3e6);
  EXPECT_THROW(preset_config("huge"), Error);
}

TEST(Checkpoint, BadConfigsAreClearErrors) {
  Json j = testing::tiny_v3_json();
  j["model_type"] = "gpt2";
  expect_error([&] { ModelConfig::from_json(j); }, "unknown model_type 'gpt2'");
  j = testing::tiny_v3_json();
  j["hidden_size"] = "big";
  expect_error([&] { ModelConfig::from_json(j); }, "hidden_size: wrong type");
  j = testing::tiny_v3_json();
  j["num_experts_per_tok"] = 9;
  expect_error([&] { ModelConfig::from_json(j); }, "num_experts_per_tok");
  j = testing::tiny_v3_json();
  j["scoring_func"] = "relu";
  expect_error([&] { ModelConfig::from_json(j); }, "scoring_func");
  j = testing::tiny_v3_json();
  j["num_hidden_layers"] = 1000000;
  expect_error([&] { ModelConfig::from_json(j); }, "num_hidden_layers must be at most 1024");
  j = testing::tiny_llama_json();
  j["num_key_value_heads"] = 3;
  expect_error([&] { ModelConfig::from_json(j); }, "multiple of num_key_value_heads");
  j = testing::tiny_v3_json();
  j["rope_scaling"]["type"] = "dynamic";
  expect_error([&] { ModelConfig::from_json(j); }, "rope_scaling");
  expect_error([] { ModelConfig::from_json(Json::array()); }, "JSON object");
}

TEST(Checkpoint, BadWeightsAreClearErrors) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_llama_json());
  Model<float> m(c);
  m.init_random(1);
  std::string dir = temp_dir("bad");
  save_model(m, dir);
  // A config that expects a different shape.
  Json j = testing::tiny_llama_json();
  j["intermediate_size"] = 32;
  save_json_file(dir + "/config.json", j);
  expect_error([&] { load_model<float>(dir); }, "has shape [24, 16], the model expects [32, 16]");
  // A checkpoint lacking a tensor.
  j = testing::tiny_llama_json();
  j["num_hidden_layers"] = 3;
  save_json_file(dir + "/config.json", j);
  expect_error([&] { load_model<float>(dir); }, "missing tensor 'model.layers.2.");
  // A config far larger than its checkpoint fails before the model's memory is allocated
  // (this one would need about 8 GB of zeroed parameters and gradients).
  j = testing::tiny_llama_json();
  j["intermediate_size"] = 40000000;
  save_json_file(dir + "/config.json", j);
  const auto t0 = std::chrono::steady_clock::now();
  expect_error([&] { load_model<float>(dir); }, "the model expects [40000000, 16]");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  // Truncated weights.
  save_json_file(dir + "/config.json", testing::tiny_llama_json());
  fs::resize_file(dir + "/model.safetensors", fs::file_size(dir + "/model.safetensors") - 10);
  expect_error([&] { load_model<float>(dir); }, "outside the data section");
  expect_error([&] { load_model<float>(dir + "/nope"); }, "not a directory");
}

TEST(Optimizer, AdamWMatchesHandComputedSteps) {
  ParamTable t;
  t.add("w", {2, 2});
  t.add("b", {2});
  OptimizerConfig cfg;
  cfg.weight_decay = 0.1;
  Optimizer<double> opt(t, cfg);
  std::vector<double> p(t.total(), 0.0), g(t.total(), 0.0);
  p[0] = 1.0;
  p[16] = 2.0;  // "b" starts at the next 16-aligned offset
  g[0] = 0.5;
  g[16] = -1.0;
  opt.step(p.data(), g.data(), 0.1);
  // Step 1: m_hat = g, v_hat = g^2, update = lr * g / (|g| + eps); decay only on matrices.
  EXPECT_NEAR(p[0], 1.0 * (1 - 0.1 * 0.1) - 0.1 * 0.5 / (0.5 + 1e-8), 1e-12);
  EXPECT_NEAR(p[16], 2.0 + 0.1 * 1.0 / (1.0 + 1e-8), 1e-12);
  opt.step(p.data(), g.data(), 0.1);
  double m = 0.9 * 0.05 + 0.1 * 0.5, v = 0.999 * 0.00025 + 0.001 * 0.25;
  double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
  double p1 = 1.0 * (1 - 0.01) - 0.1 * 0.5 / (0.5 + 1e-8);
  EXPECT_NEAR(p[0], p1 * (1 - 0.01) - 0.1 * mh / (std::sqrt(vh) + 1e-8), 1e-9);
}

TEST(Optimizer, SaveRestoreContinuesExactly) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> a(c);
  a.init_random(3);
  std::vector<float> start = a.params();
  Optimizer<float> opt(a.table(), OptimizerConfig{});
  std::vector<float> g(a.params().size());
  for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(float(i));
  opt.step(a.params().data(), g.data(), 1e-3);
  std::string path = temp_dir("opt") + ".safetensors";
  opt.save(path);
  std::vector<float> mid = a.params();
  opt.step(a.params().data(), g.data(), 1e-3);
  Optimizer<float> opt2(a.table(), OptimizerConfig{});
  opt2.load(path);
  EXPECT_EQ(opt2.steps(), 1);
  std::vector<float> b = mid;
  opt2.step(b.data(), g.data(), 1e-3);
  EXPECT_EQ(b, a.params());
  // The routing bias is a buffer, never moved by the optimizer.
  const ParamEntry& bias = a.table().at("model.layers.1.mlp.gate.e_score_correction_bias");
  EXPECT_EQ(a.params()[bias.offset], start[bias.offset]);
  Optimizer<float> sgd(a.table(), OptimizerConfig{"sgd"});
  EXPECT_THROW(sgd.load(path), Error);
}

TEST(Optimizer, ClippingAndSchedules) {
  ParamTable t;
  t.add("w", {3});
  std::vector<double> g = {3.0, 4.0, 0.0};
  g.resize(t.total(), 0.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(t, g.data(), 1.0), 5.0);
  EXPECT_NEAR(g[0], 0.6, 1e-6);
  EXPECT_NEAR(clip_grad_norm(t, g.data(), 1.0), 1.0, 1e-6);
  g[1] = std::nan("");
  EXPECT_TRUE(std::isnan(clip_grad_norm(t, g.data(), 1.0)));

  LrSchedule s = LrSchedule::from_json({{"kind", "cosine"}, {"lr", 1.0}, {"warmup_steps", 2},
                                        {"total_steps", 12}, {"min_lr_ratio", 0.1}});
  EXPECT_DOUBLE_EQ(s.at(0), 0.5);
  EXPECT_DOUBLE_EQ(s.at(1), 1.0);
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);
  EXPECT_NEAR(s.at(7), 0.55, 1e-12);
  EXPECT_NEAR(s.at(12), 0.1, 1e-12);
  EXPECT_NEAR(s.at(100), 0.1, 1e-12);
  EXPECT_THROW(LrSchedule::from_json({{"kind", "step"}}), Error);
  EXPECT_THROW(LrSchedule::from_json({{"lr", 1.0}, {"warmup", 3}}), Error);
}

TEST(Moe, RoutingBiasUpdateAndReplay) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> m(c);
  m.init_random(9, 0.5);
  Batch b = Batch::from_sequences({{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11}});
  Activations<float> acts;
  m.forward(b, ForwardOptions{}, acts);
  auto loads = m.expert_loads(acts);
  ASSERT_EQ(loads.size(), 1u);
  int64_t total = 0;
  for (int64_t v : loads[0]) total += v;
  EXPECT_EQ(total, b.n_tokens() * c.num_experts_per_tok);
  float* bias = m.param("model.layers.1.mlp.gate.e_score_correction_bias");
  m.update_routing_bias(loads, 0.01);
  double mean = double(total) / c.n_routed_experts;
  for (int e = 0; e < c.n_routed_experts; ++e) {
    float want = loads[0][e] < mean ? 0.01f : loads[0][e] > mean ? -0.01f : 0.0f;
    EXPECT_FLOAT_EQ(bias[e], want) << e;
  }
  // Keep routing: replaying the recorded experts reproduces the forward exactly, even after
  // the bias changed which experts fresh routing would pick.
  std::vector<std::vector<int32_t>> replay = {acts.layers[1].moe.topk};
  for (int e = 0; e < c.n_routed_experts; ++e) bias[e] = (e % 2) ? 5.0f : -5.0f;
  Activations<float> fresh, replayed;
  m.forward(b, ForwardOptions{}, fresh);
  EXPECT_NE(fresh.layers[1].moe.topk, acts.layers[1].moe.topk);
  ForwardOptions opts;
  opts.replay_topk = &replay;
  m.forward(b, opts, replayed);
  ASSERT_EQ(replayed.logprob.size(), acts.logprob.size());
  for (size_t t = 0; t < acts.logprob.size(); ++t) {
    if (std::isnan(acts.logprob[t])) {
      EXPECT_TRUE(std::isnan(replayed.logprob[t]));
    } else {
      EXPECT_EQ(replayed.logprob[t], acts.logprob[t]) << t;
    }
  }
}

}  // namespace
}  // namespace aha::policy
