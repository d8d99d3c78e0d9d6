// FP8 checkpoints (DeepSeek-V3 layout): saving quantizes the linear weights per block, loading
// dequantizes them; the loaded model equals the weights dequantized by hand and scores the same;
// save -> load -> save is byte-identical; bad FP8 input gives one clear error naming the tensor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <deque>
#include <filesystem>

#include "aha/core/error.h"
#include "aha/core/fp8.h"
#include "aha/core/safetensors.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/quantization.h"
#include "checkpoint_helpers.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::read_bytes;
using testing::temp_dir;

// Test-side quantization, written independently of aha's: per block amax / 448 (ue8m0: the
// smallest power of two s with amax / s rounding to at most 448), and each code the nearest of
// the 255 non-NaN E4M3 values (ties to the even code), found by search.
double e4m3_value(int c) {
  const int e = (c >> 3) & 15, m = c & 7;
  const double v = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
  return (c & 0x80) ? -v : v;
}

double nearest_e4m3_value(float x) {
  double best = 0, best_d = INFINITY;
  int best_c = 0;
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    const double d = std::abs(e4m3_value(c) - x);
    if (d < best_d || (d == best_d && (c & 1) == 0 && (best_c & 1) == 1)) {
      best = e4m3_value(c), best_d = d, best_c = c;
    }
  }
  return best;
}

template <typename T>
void quant_dequant(std::vector<T>& w, int64_t n, int64_t k, int bn, int bk, bool ue8m0) {
  for (int64_t i0 = 0; i0 < n; i0 += bn) {
    for (int64_t j0 = 0; j0 < k; j0 += bk) {
      const int64_t i1 = std::min(n, i0 + bn), j1 = std::min(k, j0 + bk);
      T amax = 0;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) amax = std::max(amax, std::abs(w[i * k + j]));
      float s;
      if (ue8m0) {
        s = FLT_MIN;
        while (amax > 464.0 * s) s *= 2;
      } else {
        s = std::max(static_cast<float>(amax / T(448)), FLT_MIN);
      }
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) {
          const double q = nearest_e4m3_value(static_cast<float>(w[i * k + j] / T(s)));
          w[i * k + j] = static_cast<T>(q) * static_cast<T>(s);
        }
    }
  }
}

// What an FP8 save stores, dequantized: FP8 linears quantized, the other trainable tensors
// rounded to BF16, the routing bias kept.
template <typename T>
std::vector<T> expected_params(const Model<T>& m, const Fp8BlockFormat& f) {
  std::vector<T> p = m.params();
  for (const ParamEntry& e : m.table().entries()) {
    if (e.trainable && is_fp8_weight(e.name, e.shape)) {
      std::vector<T> w(p.begin() + e.offset, p.begin() + e.offset + e.numel);
      quant_dequant(w, e.shape[0], e.shape[1], f.block_n, f.block_k, f.ue8m0);
      std::copy(w.begin(), w.end(), p.begin() + e.offset);
    } else if (e.trainable) {
      for (size_t i = 0; i < e.numel; ++i) {
        p[e.offset + i] = bf16_to_float(float_to_bf16(static_cast<float>(p[e.offset + i])));
      }
    }
  }
  return p;
}

std::vector<float> logprobs(const Model<float>& m) {
  Batch batch = Batch::from_sequences({{1, 5, 9, 2, 33, 7, 7, 0, 12}, {3, 4, 30, 21, 8}});
  Activations<float> acts;
  ForwardOptions opts;
  opts.keep_activations = false;
  m.forward(batch, opts, acts);
  return std::vector<float>(acts.logprob.begin(), acts.logprob.end());
}

SaveOptions fp8_options(int bn, int bk, bool ue8m0) {
  SaveOptions o;
  o.dtype = DType::kBF16;
  o.fp8 = Fp8BlockFormat{bn, bk, ue8m0};
  return o;
}

TEST(Fp8Checkpoint, LayoutAsDeepSeekV3) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> m(c);
  m.init_random(11);
  const std::string dir = temp_dir("fp8_layout");
  save_model(m, dir, fp8_options(8, 5, false));
  SafetensorsFile f(dir + "/model.safetensors");
  const auto& t = f.tensors();
  const std::string kv = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";  // [12, 16]
  ASSERT_TRUE(t.count(kv));
  EXPECT_EQ(t.at(kv).dtype, DType::kF8E4M3);
  EXPECT_EQ(t.at(kv + "_scale_inv").dtype, DType::kF32);
  EXPECT_EQ(t.at(kv + "_scale_inv").shape, (std::vector<int64_t>{2, 4}));  // ceil(12/8), ceil(16/5)
  EXPECT_EQ(t.at("model.layers.1.mlp.experts.3.down_proj.weight").dtype, DType::kF8E4M3);
  EXPECT_EQ(t.at("model.layers.1.mlp.shared_experts.up_proj.weight").dtype, DType::kF8E4M3);
  EXPECT_EQ(t.at("model.layers.0.mlp.gate_proj.weight").dtype, DType::kF8E4M3);
  EXPECT_EQ(t.at("model.embed_tokens.weight").dtype, DType::kBF16);
  EXPECT_EQ(t.at("lm_head.weight").dtype, DType::kBF16);
  EXPECT_EQ(t.at("model.layers.1.mlp.gate.weight").dtype, DType::kBF16);
  EXPECT_EQ(t.at("model.layers.1.mlp.gate.e_score_correction_bias").dtype, DType::kF32);
  EXPECT_EQ(t.at("model.norm.weight").dtype, DType::kBF16);
  EXPECT_FALSE(t.count("model.norm.weight_scale_inv"));
  Json cfg = load_json_file(dir + "/config.json");
  EXPECT_EQ(cfg["quantization_config"], (Json{{"quant_method", "fp8"},
                                              {"fmt", "e4m3"},
                                              {"activation_scheme", "dynamic"},
                                              {"weight_block_size", {8, 5}}}));
  EXPECT_EQ(cfg["torch_dtype"], "bfloat16");
}

TEST(Fp8Checkpoint, LoadEqualsDequantizedWeightsAndScoresTheSame) {
  for (const Json& j :
       {testing::tiny_v3_json(), testing::tiny_v2_json(), testing::tiny_qwen2_json()}) {
    for (bool ue8m0 : {false, true}) {
      ModelConfig c = ModelConfig::from_json(j);
      Model<float> m(c);
      m.init_random(3);
      const Fp8BlockFormat f{8, 5, ue8m0};
      const std::string dir = temp_dir("fp8_" + std::string(c.type_name()) + (ue8m0 ? "_ue" : ""));
      save_model(m, dir, fp8_options(f.block_n, f.block_k, f.ue8m0));
      auto back = load_model<float>(dir);
      Model<float> ref(c);
      ref.params() = expected_params(m, f);
      ASSERT_EQ(back->params(), ref.params()) << c.type_name() << " ue8m0=" << ue8m0;
      const std::vector<float> a = logprobs(*back), b = logprobs(ref), orig = logprobs(m);
      ASSERT_EQ(a.size(), b.size());
      double drift = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        if (std::isnan(b[i])) {  // the last position of a sequence has no next token
          EXPECT_TRUE(std::isnan(a[i])) << i;
          continue;
        }
        EXPECT_NEAR(a[i], b[i], 1e-6 * std::abs(b[i])) << i;
        drift = std::max(drift, std::abs(double(a[i]) - orig[i]));
      }
      EXPECT_GT(drift, 0.0);  // quantization did something
      EXPECT_LT(drift, 0.05);
      // In double: codes times scales are exact, so the loaded weights are the float ones.
      auto back64 = load_model<double>(dir);
      for (size_t i = 0; i < back64->params().size(); ++i) {
        ASSERT_EQ(static_cast<float>(back64->params()[i]), back->params()[i]) << i;
      }
    }
  }
}

TEST(Fp8Checkpoint, SaveLoadSaveIsByteIdentical) {
  for (bool ue8m0 : {false, true}) {
    ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
    Model<float> m(c);
    m.init_random(5);
    const std::string d1 = temp_dir("fp8_rt1"), d2 = temp_dir("fp8_rt2"), d3 = temp_dir("fp8_rt3");
    save_model(m, d1, fp8_options(8, 5, ue8m0));
    save_model(*load_model<float>(d1), d2, fp8_options(8, 5, ue8m0));
    EXPECT_EQ(read_bytes(fs::path(d1) / "model.safetensors"),
              read_bytes(fs::path(d2) / "model.safetensors"));
    EXPECT_EQ(read_bytes(fs::path(d1) / "config.json"), read_bytes(fs::path(d2) / "config.json"));
    // Through the double model as well, and sharded.
    SaveOptions sharded = fp8_options(8, 5, ue8m0);
    sharded.max_shard_bytes = 2048;
    save_model(*load_model<double>(d1), d3, sharded);
    auto a = load_model<float>(d1), b = load_model<float>(d3);
    EXPECT_EQ(a->params(), b->params());
    // Saved without fp8, the config no longer claims quantized weights.
    save_model(*a, d2);
    EXPECT_FALSE(load_json_file(d2 + "/config.json").contains("quantization_config"));
    EXPECT_EQ(load_model<float>(d2)->params(), a->params());
  }
}

TEST(Fp8Checkpoint, DeepSeekBlockSizeOnRaggedShapes) {
  // 128 x 128 blocks on a model whose matrices are smaller or not multiples of 128.
  Json j = testing::tiny_v3_json();
  j["hidden_size"] = 136;
  j["intermediate_size"] = 300;
  ModelConfig c = ModelConfig::from_json(j);
  Model<float> m(c);
  m.init_random(9);
  const std::string dir = temp_dir("fp8_ds128");
  save_model(m, dir, fp8_options(128, 128, false));
  SafetensorsFile f(dir + "/model.safetensors");
  EXPECT_EQ(f.tensors().at("model.layers.0.mlp.down_proj.weight_scale_inv").shape,
            (std::vector<int64_t>{2, 3}));  // [136, 300]
  auto back = load_model<float>(dir);
  EXPECT_EQ(back->params(), expected_params(m, Fp8BlockFormat{128, 128, false}));
}

// Rewrites dir's model.safetensors after `edit` changed its tensors (bytes as stored).
void rewrite_tensors(const std::string& dir,
                     const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  const std::string path = dir + "/model.safetensors";
  std::deque<std::string> bytes;
  std::vector<TensorToWrite> ts;
  {
    SafetensorsFile f(path);
    for (const auto& [name, info] : f.tensors()) {
      bytes.emplace_back(reinterpret_cast<const char*>(f.data(info)), info.end - info.begin);
      ts.push_back({name, info.shape, bytes.back().data(), info.dtype, info.dtype});
    }
  }
  edit(ts);
  write_safetensors(path, ts);
}

TEST(Fp8Checkpoint, BadInputIsOneClearError) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> m(c);
  m.init_random(2);
  const std::string dir = temp_dir("fp8_bad");
  const std::string w = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";  // [12, 16]
  save_model(m, dir, fp8_options(8, 5, false));
  const Json cfg = load_json_file(dir + "/config.json");

  Json j = cfg;
  j["quantization_config"]["quant_method"] = "gptq";
  save_json_file(dir + "/config.json", j);
  expect_error([&] { load_model<float>(dir); }, "quant_method 'gptq' is not supported");
  j = cfg;
  j["quantization_config"]["weight_block_size"] = {128};
  save_json_file(dir + "/config.json", j);
  expect_error([&] { load_model<float>(dir); }, "weight_block_size must be two positive");
  j = cfg;
  j["quantization_config"]["scale_fmt"] = "e8m0fnu";
  save_json_file(dir + "/config.json", j);
  expect_error([&] { load_model<float>(dir); }, "scale_fmt");
  j = cfg;
  j.erase("quantization_config");
  save_json_file(dir + "/config.json", j);
  expect_error([&] { load_model<float>(dir); },
               "is F8_E4M3 but config.json has no quantization_config");
  j = cfg;
  j["quantization_config"]["weight_block_size"] = {8, 8};  // the stored scales are [., ceil(K/5)]
  save_json_file(dir + "/config.json", j);
  expect_error([&] { load_model<float>(dir); },
               "q_a_proj.weight_scale_inv has shape [2, 4], expected [2, 2]");
  save_json_file(dir + "/config.json", cfg);
  ASSERT_NO_THROW(load_model<float>(dir));

  rewrite_tensors(dir, [&](std::vector<TensorToWrite>& ts) {
    std::erase_if(ts, [&](const TensorToWrite& t) { return t.name == w + "_scale_inv"; });
  });
  expect_error([&] { load_model<float>(dir); }, "its block scales " + w + "_scale_inv are missing");
  save_model(m, dir, fp8_options(8, 5, false));
  rewrite_tensors(dir, [&](std::vector<TensorToWrite>& ts) {
    for (auto& t : ts) {
      if (t.name == w + "_scale_inv") t.shape = {t.shape[1], t.shape[0]};
    }
  });
  expect_error([&] { load_model<float>(dir); }, w + "_scale_inv has shape [4, 2], expected [2, 4]");
}

}  // namespace
}  // namespace aha::policy
