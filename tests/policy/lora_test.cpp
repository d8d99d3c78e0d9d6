// LoRA: the adapters' gradients by finite differences at model level, the frozen base (no
// gradient, no optimizer state), the merged export equal to the adapted model, the PEFT layout
// round trip, the config's errors, the golden from PyTorch (tests/reference/gen_lora.py) and
// the decode path's column slices (bitwise the whole product).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>

#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "aha/core/safetensors.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "../../policy/src/linear.h"
#include "checkpoint_helpers.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

namespace fs = std::filesystem;

LoraConfig lora_of(std::vector<std::string> modules, bool experts = false, int rank = 3) {
  LoraConfig l;
  l.rank = rank;
  l.alpha = 5;
  l.target_modules = std::move(modules);
  l.target_experts = experts;
  return l;
}

const std::vector<std::string> kMlaAll = {"q_a_proj", "q_b_proj", "q_proj", "kv_a_proj_with_mqa",
                                          "kv_b_proj", "o_proj", "gate_proj", "up_proj",
                                          "down_proj"};
const std::vector<std::string> kGqaAll = {"q_proj", "k_proj",    "v_proj",  "o_proj",
                                          "gate_proj", "up_proj", "down_proj"};

// A model with adapters whose B is not zero (PEFT's init makes B zero, which hides dA).
template <typename T>
std::unique_ptr<Model<T>> adapted(const Json& j, const LoraConfig& l, uint64_t seed) {
  ModelConfig c = ModelConfig::from_json(j);
  c.lora = l;
  auto m = std::make_unique<Model<T>>(c);
  m->init_random(seed, 0.3);
  Rng rng(seed + 1);
  for (const ParamEntry& e : m->table().entries()) {
    if (!e.adapter) continue;
    for (size_t i = 0; i < e.numel; ++i) m->params()[e.offset + i] = T(0.3 * rng.normal());
  }
  return m;
}

Batch test_batch() {
  return Batch::from_sequences({{1, 5, 9, 2, 7, 3}, {4, 4, 8}, {6}, {2, 3, 30, 1, 0}});
}

// Objective sum_t coef_t logprob_t; the adapters' gradients against central differences, and
// the base's gradient left at zero (frozen: no weight GEMM ran).
// With dropout, a LoraDropoutScope holds one mask through every evaluation.
void check_adapter_grads(const Json& j, const LoraConfig& l) {
  auto m = adapted<double>(j, l, 7);
  std::optional<LoraDropoutScope> dropout;
  if (l.dropout > 0) dropout.emplace(m->params().data(), 99);
  const Batch batch = test_batch();
  Rng rng(21);
  std::vector<double> coef(batch.n_tokens());
  for (double& v : coef) v = rng.normal();
  Activations<double> acts;
  auto f = [&] {
    m->forward(batch, ForwardOptions{}, acts);
    double s = 0;
    for (int64_t t = 0; t < batch.n_tokens(); ++t) {
      if (acts.targets[t] >= 0) s += coef[t] * acts.logprob[t];
    }
    return s;
  };
  f();
  std::fill(m->grads().begin(), m->grads().end(), 0.0);
  m->backward(acts, coef.data(), nullptr, BalanceWeights{}, nullptr, nullptr);
  const std::vector<double> g = m->grads();
  int adapters = 0;
  for (const ParamEntry& e : m->table().entries()) {
    if (!e.adapter) continue;
    ++adapters;
    EXPECT_GE(e.offset, m->adapter_begin()) << e.name;
    const size_t step = std::max<size_t>(1, e.numel / 5);
    for (size_t i = 0; i < e.numel; i += step) {
      double* x = m->params().data() + e.offset + i;
      const double orig = *x, eps = 1e-5;
      *x = orig + eps;
      const double fp = f();
      *x = orig - eps;
      const double fm = f();
      *x = orig;
      const double fd = (fp - fm) / (2 * eps);
      EXPECT_NEAR(g[e.offset + i], fd, 1e-5 * (1 + std::abs(fd))) << e.name << "[" << i << "]";
    }
  }
  EXPECT_GT(adapters, 0);
  // Frozen linear weights, the LM head and the embedding got no gradient at all.
  for (const ParamEntry& e : m->table().entries()) {
    if (e.adapter || e.shape.size() != 2) continue;
    for (size_t i = 0; i < e.numel; ++i) ASSERT_EQ(g[e.offset + i], 0.0) << e.name;
  }
}

TEST(Lora, AdapterGradsDeepseekV3AllProjectionsAndExperts) {
  check_adapter_grads(testing::tiny_v3_json(), lora_of(kMlaAll, true));
}
TEST(Lora, AdapterGradsDeepseekV2DirectQuery) {
  check_adapter_grads(testing::tiny_v2_json(), lora_of(kMlaAll, false, 2));
}
TEST(Lora, AdapterGradsQwen2WithBiasAndRsLora) {
  LoraConfig l = lora_of(kGqaAll);
  l.use_rslora = true;
  check_adapter_grads(testing::tiny_qwen2_json(), l);
}
TEST(Lora, AdapterGradsLlamaTied) {
  check_adapter_grads(testing::tiny_llama_json(), lora_of(kGqaAll));
}

TEST(Lora, TargetsAndScale) {
  LoraConfig l = lora_of({"q_proj", "gate_proj"});
  EXPECT_TRUE(l.targets("model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(l.targets("model.layers.1.mlp.shared_experts.gate_proj"));
  EXPECT_FALSE(l.targets("model.layers.1.mlp.experts.3.gate_proj"));
  EXPECT_FALSE(l.targets("model.layers.0.self_attn.o_proj"));
  l.target_experts = true;
  EXPECT_TRUE(l.targets("model.layers.1.mlp.experts.3.gate_proj"));
  EXPECT_DOUBLE_EQ(l.scale(), 5.0 / 3);
  l.use_rslora = true;
  EXPECT_DOUBLE_EQ(l.scale(), 5.0 / std::sqrt(3.0));
}

TEST(Lora, AdapterGradsWithDropoutDeepseekV3) {
  LoraConfig l = lora_of(kMlaAll, true);
  l.dropout = 0.3;
  check_adapter_grads(testing::tiny_v3_json(), l);
}

// Dropout acts only inside a scope for this model's parameters: elsewhere (sampling, pi_old,
// another model) the adapted model computes what it computes without dropout.
TEST(Lora, DropoutOnlyInItsScopeAndAtItsRate) {
  LoraConfig l = lora_of(kMlaAll, true);
  auto plain = adapted<float>(testing::tiny_v3_json(), l, 7);
  l.dropout = 0.3;
  auto dropped = adapted<float>(testing::tiny_v3_json(), l, 7);
  const Batch batch = test_batch();
  Activations<float> a, b, c;
  ForwardOptions fo;
  // Bit for bit (rows without a target hold NaN, which == would call unequal).
  auto same = [](const Buf<float>& x, const Buf<float>& y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
  };
  plain->forward(batch, fo, a);
  dropped->forward(batch, fo, b);
  EXPECT_TRUE(same(a.logprob, b.logprob)) << "no scope: no dropout";
  {
    LoraDropoutScope other(plain->params().data(), 5);
    dropped->forward(batch, fo, c);
    EXPECT_TRUE(same(a.logprob, c.logprob)) << "a scope for another model's block";
  }
  {
    LoraDropoutScope mine(dropped->params().data(), 5);
    dropped->forward(batch, fo, c);
  }
  EXPECT_FALSE(same(a.logprob, c.logprob)) << "in its scope the adapters see dropped inputs";
  int64_t zeros = 0;
  const int64_t n = 200000;
  for (int64_t i = 0; i < n; ++i) zeros += lora_dropout_mask(11, 123, uint64_t(i), 0.3) == 0.0;
  EXPECT_NEAR(double(zeros) / double(n), 0.3, 0.005);
  EXPECT_EQ(lora_dropout_mask(11, 123, 7, 0.3), lora_dropout_mask(11, 123, 7, 0.3));
  EXPECT_DOUBLE_EQ(lora_dropout_mask(11, 123, 1, 0.0), 1.0);
}

TEST(Lora, ConfigErrorsNameTheKey) {
  using testing::expect_error;
  expect_error([] { LoraConfig::from_json(Json{{"rnak", 8}}); }, "rnak");
  expect_error([] { LoraConfig::from_json(Json{{"rank", -1}}); }, "lora.rank");
  expect_error([] { LoraConfig::from_json(Json{{"rank", 4}, {"alpha", 0}}); }, "lora.alpha");
  expect_error([] { LoraConfig::from_json(Json{{"target_modules", {"qproj"}}}); }, "qproj");
  expect_error([] { LoraConfig::from_json(Json{{"dropout", 1.0}}); }, "lora.dropout");
  expect_error([] { LoraConfig::from_json(Json{{"dropout", -0.1}}); }, "lora.dropout");
  expect_error([] { LoraConfig::from_json(Json{{"rank", "8"}}); }, "lora.rank");
  const LoraConfig ok = LoraConfig::from_json(
      Json{{"rank", 8}, {"alpha", 16}, {"target_modules", {"q_proj", "down_proj"}}});
  EXPECT_EQ(ok.rank, 8);
  EXPECT_EQ(LoraConfig::from_json(ok.to_json()).to_json(), ok.to_json());
}

// PEFT's init (B = 0) leaves the model's function unchanged, bit for bit; the base keeps its
// offsets, so the base tensors are where a model without adapters has them.
TEST(Lora, InitKeepsTheBaseFunctionAndOffsets) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> base(c);
  base.init_random(3, 0.2);
  c.lora = lora_of(kMlaAll, true);
  Model<float> m(c);
  ASSERT_EQ(m.adapter_begin(), base.params().size());
  std::copy(base.params().begin(), base.params().end(), m.params().begin());
  m.init_adapters(9);
  for (const ParamEntry& e : m.table().entries()) {
    if (!e.adapter || !e.name.ends_with("lora_A.weight")) continue;
    const float bound = 1.0f / std::sqrt(float(e.shape[1]));
    float mx = 0;
    for (size_t i = 0; i < e.numel; ++i) mx = std::max(mx, std::abs(m.params()[e.offset + i]));
    EXPECT_LE(mx, bound) << e.name;
    EXPECT_GT(mx, 0.5f * bound) << e.name;
  }
  Activations<float> a, b;
  base.forward(test_batch(), ForwardOptions{}, a);
  m.forward(test_batch(), ForwardOptions{}, b);
  for (int64_t t = 0; t < test_batch().n_tokens(); ++t) {
    if (std::isnan(a.logprob[t])) continue;
    EXPECT_EQ(a.logprob[t], b.logprob[t]) << t;
  }
}

// save_model writes W + s B A: the merged checkpoint, loaded without adapters, scores like the
// adapted model (fp32 rounding apart).
TEST(Lora, MergedExportScoresLikeTheAdaptedModel) {
  for (const Json& j : {testing::tiny_v3_json(), testing::tiny_qwen2_json()}) {
    const auto& mods = j["model_type"] == "qwen2" ? kGqaAll : kMlaAll;
    auto m = adapted<float>(j, lora_of(mods, true), 5);
    const std::string dir = testing::temp_dir("lora_merged");
    save_model(*m, dir);
    auto merged = load_model<float>(dir);
    EXPECT_EQ(merged->params().size(), m->adapter_begin());
    Activations<float> a, b;
    m->forward(test_batch(), ForwardOptions{}, a);
    merged->forward(test_batch(), ForwardOptions{}, b);
    double max_diff = 0;
    for (int64_t t = 0; t < test_batch().n_tokens(); ++t) {
      if (std::isnan(a.logprob[t])) continue;
      max_diff = std::max(max_diff, double(std::abs(a.logprob[t] - b.logprob[t])));
    }
    EXPECT_LT(max_diff, 2e-5) << j["model_type"];
    EXPECT_GT(max_diff, 0.0) << "the adapters changed nothing?";
    fs::remove_all(dir);
  }
}

// The PEFT layout: file names, adapter_config.json keys, tensor names and shapes; loading gives
// back the same bits; a config that disagrees is refused.
TEST(Lora, PeftLayoutRoundTrip) {
  const LoraConfig l = lora_of({"q_proj", "o_proj", "down_proj"});
  auto m = adapted<float>(testing::tiny_qwen2_json(), l, 3);
  const std::string dir = testing::temp_dir("lora_peft");
  save_adapters(*m, dir);
  const Json cfg = load_json_file((fs::path(dir) / "adapter_config.json").string());
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 3);
  EXPECT_EQ(cfg["lora_alpha"], 5.0);
  EXPECT_EQ(cfg["target_modules"], Json({"q_proj", "o_proj", "down_proj"}));
  EXPECT_TRUE(cfg.contains("base_model_name_or_path"));
  TensorArchive archive((fs::path(dir) / "adapter_model.safetensors").string());
  const int d = 12;  // tiny_qwen2: hidden 12, 3 heads of 4, intermediate 20
  EXPECT_EQ(archive.info("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight").shape,
            (std::vector<int64_t>{3, d}));
  EXPECT_EQ(archive.info("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight").shape,
            (std::vector<int64_t>{d, 3}));
  EXPECT_EQ(archive.info("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").shape,
            (std::vector<int64_t>{3, 20}));
  EXPECT_EQ(archive.names().size(), 2u * 3 * 2);  // 2 layers, 3 modules, A and B

  ModelConfig c = m->config();
  Model<float> back(c);
  load_adapters(back, dir);
  for (size_t i = m->adapter_begin(); i < m->params().size(); ++i) {
    ASSERT_EQ(back.params()[i], m->params()[i]) << i;
  }
  c.lora.rank = 4;
  Model<float> wrong_rank(c);
  testing::expect_error([&] { load_adapters(wrong_rank, dir); }, "rank 4");
  c.lora = lora_of({"q_proj"});
  Model<float> fewer(c);
  testing::expect_error([&] { load_adapters(fewer, dir); }, "target_modules differ");
  fs::remove_all(dir);
}

// Frozen base: the optimizer holds moments for the adapters only, steps only them, and its
// state file names only them.
TEST(Lora, OptimizerTouchesOnlyTheAdapters) {
  auto m = adapted<float>(testing::tiny_v3_json(), lora_of(kMlaAll), 4);
  OptimizerConfig oc;
  Optimizer<float> opt(m->table(), oc);
  const std::vector<float> before = m->params();
  std::fill(m->grads().begin(), m->grads().end(), 1.0f);  // even the base's: must be ignored
  opt.step(m->params().data(), m->grads().data(), 1e-2);
  for (size_t i = 0; i < m->adapter_begin(); ++i) ASSERT_EQ(m->params()[i], before[i]) << i;
  size_t changed = 0;
  for (size_t i = m->adapter_begin(); i < before.size(); ++i) {
    changed += m->params()[i] != before[i];
  }
  EXPECT_GT(changed, 0u);
  const std::string dir = testing::temp_dir("lora_opt");
  fs::create_directories(dir);
  const std::string path = (fs::path(dir) / "optimizer.safetensors").string();
  opt.save(path);
  TensorArchive archive(path);
  size_t adapters = 0;
  for (const ParamEntry& e : m->table().entries()) adapters += e.adapter;
  EXPECT_EQ(archive.names().size(), 2 * adapters);
  Optimizer<float> back(m->table(), oc);
  back.load(path);
  EXPECT_EQ(back.steps(), 1);
  fs::remove_all(dir);
}

// One LoRA linear layer against PyTorch autograd (tests/reference/gen_lora.py): y, dx, dA, dB in
// double through the training path; y in float through the decode path too.
TEST(Lora, LinearLayerMatchesPyTorch) {
  const Json all = load_json_file(std::string(AHA_TEST_DATA_DIR) + "/lora_cases.json");
  ASSERT_FALSE(all["cases"].empty());
  for (const Json& k : all["cases"]) {
    const int64_t n = k["n"], n_in = k["n_in"], n_out = k["n_out"], r = k["rank"];
    LoraConfig l = lora_of({"q_proj"}, false, int(r));
    l.alpha = k["alpha"];
    l.use_rslora = k["use_rslora"];
    ParamTable t;
    t.set_lora(&l, size_t(n_out * n_in + 64));
    const LinearP p = add_linear(t, "m.q_proj", int(n_in), int(n_out), k["bias"].get<bool>());
    ASSERT_NE(p.lora_a, kNoParam);
    std::vector<double> P(t.total(), 0.0), G(t.total(), 0.0);
    auto put = [&](const char* key, size_t off) {
      const std::vector<double> v = k[key];
      std::copy(v.begin(), v.end(), P.begin() + off);
    };
    put("w", p.w);
    if (p.b != kNoParam) put("b", p.b);
    put("a", p.lora_a);
    put("bb", p.lora_b);
    const std::vector<double> x = k["x"], dy = k["dy"];
    std::vector<double> y(n * n_out), dx(n * n_in, 0.0);
    linear_forward(p, P.data(), x.data(), y.data(), n);
    linear_backward(p, P.data(), G.data(), x.data(), dy.data(), dx.data(), n);
    // LinearP keeps s as a float: exact for alpha / r here, rounded for rsLoRA's alpha / sqrt(r).
    const double tol = l.use_rslora ? 1e-7 : 1e-10;
    auto expect_near = [&](const double* got, const char* key) {
      const std::vector<double> want = k[key];
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << key << "[" << i << "]";
      }
    };
    expect_near(y.data(), "y");
    expect_near(dx.data(), "dx");
    expect_near(G.data() + p.lora_a, "da");
    expect_near(G.data() + p.lora_b, "dbb");
    for (size_t i = 0; i < size_t(n_out * n_in); ++i) ASSERT_EQ(G[p.w + i], 0.0) << "frozen W";
    std::vector<float> Pf(P.begin(), P.end()), xf(x.begin(), x.end()), yf(n * n_out);
    linear_stable(p, Pf.data(), xf.data(), yf.data(), n);
    const std::vector<double> want = k["y"];
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(yf[i], want[i], 1e-4 * (1 + std::abs(want[i]))) << "decode y[" << i << "]";
    }
  }
}

// The naive MLA prefill rebuilds one head's keys at a time (linear_stable_cols): every column
// must carry the bits it has in the whole product, in fp32 and bf16, with an adapter and a bias,
// for slices that start anywhere in a 16-lane panel.
TEST(Lora, StableColumnSlicesAreBitwiseTheWholeProduct) {
  for (const MatmulPrecision prec : {MatmulPrecision::fp32, MatmulPrecision::bf16}) {
    for (const bool adapter : {false, true}) {
      const MatmulPrecisionScope scope(prec);
      const int64_t n = 37, n_in = 72, n_out = 150;
      LoraConfig l = lora_of({"q_proj"}, false, 8);
      ParamTable t;
      if (adapter) t.set_lora(&l, size_t(n_out * (n_in + 1) + 1024));
      const LinearP p = add_linear(t, "m.q_proj", int(n_in), int(n_out), true);
      ASSERT_EQ(p.lora_a != kNoParam, adapter);
      Rng rng(11);
      std::vector<float> P(t.total()), x(n * n_in), whole(n * n_out);
      for (float& v : P) v = static_cast<float>(rng.normal());
      for (float& v : x) v = static_cast<float>(rng.normal());
      linear_stable(p, P.data(), x.data(), whole.data(), n);
      for (const auto& [j0, nj] :
           {std::pair<int64_t, int64_t>{0, 150}, {0, 25}, {25, 25}, {7, 64}, {100, 50}, {149, 1}}) {
        std::vector<float> part(n * nj);
        linear_stable_cols(p, P.data(), x.data(), part.data(), n, j0, nj);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(std::memcmp(part.data() + i * nj, whole.data() + i * n_out + j0, nj * 4), 0)
              << "bf16 " << (prec == MatmulPrecision::bf16) << " adapter " << adapter << " columns "
              << j0 << "+" << nj << " row " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace aha::policy
