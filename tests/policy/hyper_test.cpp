// Hyper-connections (hyper.h): the Sinkhorn projection's invariants and gradient, the
// orientation of the mixing matrix, tensor names and config checks.
#include <gtest/gtest.h>

#include <cmath>

#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/core/safetensors.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/hyper.h"
#include "aha/policy/model.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

std::vector<double> random_logits(int m, uint64_t seed, double scale) {
  Rng rng(seed);
  std::vector<double> v(m * m);
  for (double& x : v) x = rng.normal() * scale;
  return v;
}

double row_error(const std::vector<double>& C, int m) {
  double worst = 0;
  for (int p = 0; p < m; ++p) {
    double s = 0;
    for (int q = 0; q < m; ++q) s += C[p * m + q];
    worst = std::max(worst, std::abs(s - 1));
  }
  return worst;
}

TEST(Sinkhorn, DoublyStochasticAndConverging) {
  for (int m : {2, 4, 7}) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      const auto L = random_logits(m, seed, 3.0);
      std::vector<double> C(m * m), C3(m * m), C1(m * m);
      sinkhorn_forward(L.data(), m, 20, 1e-6, C.data(), static_cast<double*>(nullptr));
      sinkhorn_forward(L.data(), m, 3, 1e-6, C3.data(), static_cast<double*>(nullptr));
      sinkhorn_forward(L.data(), m, 1, 1e-6, C1.data(), static_cast<double*>(nullptr));
      for (int q = 0; q < m; ++q) {
        double s = 0;
        for (int p = 0; p < m; ++p) {
          EXPECT_GE(C[p * m + q], 0.0);
          s += C[p * m + q];
        }
        EXPECT_NEAR(s, 1.0, 1e-5) << "column " << q << " of m=" << m;  // ends on a column step
      }
      EXPECT_LE(row_error(C, m), row_error(C3, m) + 1e-12) << "m=" << m << " seed " << seed;
      EXPECT_LE(row_error(C3, m), row_error(C1, m) + 1e-12) << "m=" << m << " seed " << seed;
      // 20 steps leave rows only approximately normalised for logits this spread out.
      EXPECT_LT(row_error(C, m), 2e-2) << "m=" << m << " seed " << seed;
    }
  }
}

// The unrolled backward against central differences, in double, for several sizes and lengths.
TEST(Sinkhorn, BackwardMatchesFiniteDifferences) {
  for (int m : {2, 4}) {
    for (int iters : {1, 2, 20}) {
      auto L = random_logits(m, 7 + m, 1.5);
      const auto dout = random_logits(m, 99, 1.0);
      auto f = [&] {
        std::vector<double> C(m * m);
        sinkhorn_forward(L.data(), m, iters, 1e-6, C.data(), static_cast<double*>(nullptr));
        double s = 0;
        for (int k = 0; k < m * m; ++k) s += dout[k] * C[k];
        return s;
      };
      std::vector<double> C(m * m), trace(2 * iters * m * m), dL(m * m);
      sinkhorn_forward(L.data(), m, iters, 1e-6, C.data(), trace.data());
      sinkhorn_backward(trace.data(), dout.data(), m, iters, 1e-6, dL.data());
      for (int k = 0; k < m * m; ++k) {
        const double orig = L[k], h = 1e-6;
        L[k] = orig + h;
        const double fp = f();
        L[k] = orig - h;
        const double fm = f();
        L[k] = orig;
        EXPECT_NEAR(dL[k], (fp - fm) / (2 * h), 1e-7) << "m=" << m << " iters=" << iters;
      }
    }
  }
}

// A comb biased towards the cyclic shift p -> p + 1 must carry stream p into stream p + 1:
// X'_q = post_q y + sum_p comb[p][q] X_p (DeepSeek-V4 applies comb transposed). Applying comb
// untransposed would carry stream p into p - 1 and fail here.
TEST(HyperConnections, CombMovesStreamPIntoColumnQ) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_llama_mhc_json());
  c.hc_mult = 3;
  c.hidden_size = 2;
  const int m = 3, d = 2, K = (m + 2) * m;
  ParamTable t;
  HcP p = add_hc(t, "hc", c);
  std::vector<double> P(t.total(), 0.0);
  P[p.scale] = P[p.scale + 1] = P[p.scale + 2] = 1.0;
  for (int k = 0; k < m; ++k) P[p.base + m + k] = -30.0;  // post ~ 0: only the comb path
  for (int pp = 0; pp < m; ++pp) P[p.base + 2 * m + pp * m + (pp + 1) % m] = 30.0;
  ASSERT_EQ(t.at("hc.fn").shape, (std::vector<int64_t>{K, m * d}));
  std::vector<double> X = {1, 2, 10, 20, 100, 200};  // streams 0, 1, 2
  std::vector<double> u(d), y(d, 5.0);
  HcActs<double> a;
  hc_collapse(c, p, P.data(), X.data(), u.data(), a, 1, true, false);
  const std::vector<double> X0 = X;
  hc_expand(c, y.data(), X.data(), a, 1, true);
  for (int pp = 0; pp < m; ++pp) {
    const int q = (pp + 1) % m;
    for (int i = 0; i < d; ++i) EXPECT_NEAR(X[q * d + i], X0[pp * d + i], 1e-3);  // eps leaks ~1e-6 of the others
  }
  // The collapse with base 0 on pre is sigmoid(0) + eps = 0.5 per stream.
  EXPECT_NEAR(u[0], 0.5 * (1 + 10 + 100), 1e-3);
}

TEST(HyperConnections, TensorNamesShapesAndInit) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_v3_mhc_json());
  Model<float> model(c);
  model.init_random(3);
  const int64_t d = c.hidden_size;
  EXPECT_EQ(model.table().at("model.layers.1.attn_hc.fn").shape, (std::vector<int64_t>{24, 4 * d}));
  EXPECT_EQ(model.table().at("model.layers.1.ffn_hc.base").shape, (std::vector<int64_t>{24}));
  EXPECT_EQ(model.table().at("model.layers.0.ffn_hc.scale").shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(model.table().at("model.hc_head.hc_fn").shape, (std::vector<int64_t>{4, 4 * d}));
  EXPECT_EQ(model.table().at("model.hc_head.hc_scale").shape, (std::vector<int64_t>{1}));
  EXPECT_EQ(*model.param("model.layers.0.attn_hc.scale"), 1.0f);
  EXPECT_EQ(*model.param("model.hc_head.hc_scale"), 1.0f);
  EXPECT_EQ(*model.param("model.layers.0.attn_hc.base"), 0.0f);
  EXPECT_EQ(c.residual_width(), 4 * d);
  const Json back = c.to_json();
  EXPECT_EQ(back["hc_mult"], 4);
  EXPECT_EQ(ModelConfig::from_json(back).hc_sinkhorn_iters, 20);
}

// A BF16 checkpoint keeps the hyper-connection tensors in F32 (HF's DeepSeek-V4 keeps them fp32)
// and loads back to the same logprobs as the model it came from, up to the BF16 rounding of the
// other weights.
TEST(HyperConnections, Bf16CheckpointKeepsThemInF32) {
  Model<float> model(ModelConfig::from_json(testing::tiny_v3_mhc_json()));
  model.init_random(4, 0.3);
  const std::string dir = ::testing::TempDir() + "/aha_mhc_bf16";
  SaveOptions so;
  so.dtype = DType::kBF16;
  save_model(model, dir, so);
  TensorArchive ar(dir + "/model.safetensors");
  EXPECT_EQ(ar.info("model.layers.0.attn_hc.fn").dtype, DType::kF32);
  EXPECT_EQ(ar.info("model.hc_head.hc_base").dtype, DType::kF32);
  EXPECT_EQ(ar.info("model.layers.0.input_layernorm.weight").dtype, DType::kBF16);
  auto back = load_model<float>(dir);
  EXPECT_EQ(back->config().hc_mult, 4);
  const float* a = model.param("model.layers.1.ffn_hc.fn");
  const float* b = back->param("model.layers.1.ffn_hc.fn");
  EXPECT_TRUE(std::equal(a, a + 24 * 4 * 16, b));
}

TEST(HyperConnections, BadConfigNamesTheKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, Json>>{
           {"hc_mult", 0}, {"hc_mult", 17}, {"hc_mult", "four"}, {"hc_sinkhorn_iters", 0},
           {"hc_eps", -1.0}}) {
    Json j = testing::tiny_v3_mhc_json();
    j[key] = value;
    try {
      ModelConfig::from_json(j);
      ADD_FAILURE() << key << " = " << value.dump() << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace aha::policy
