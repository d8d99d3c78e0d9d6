// DeepSeek-V3 multi-token prediction (mtp.h): the gradient of the MTP loss through the module
// and into the trunk, the order of eh_proj's input halves, and the checkpoint layout.
#include <gtest/gtest.h>

#include <cmath>

#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/core/safetensors.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/model.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

Json tiny_v3_mtp_json(int depth = 1) {
  Json j = testing::tiny_v3_json();
  j["num_nextn_predict_layers"] = depth;
  return j;
}

const Batch& batch() {
  static const Batch b =
      Batch::from_sequences({{1, 5, 9, 2, 7, 3}, {4, 4, 8}, {6}, {2, 3, 30, 1, 0}, {7, 8}});
  return b;
}

// restrict: only rows from odd main rows in the loss (mtp_keep_rows, as SFT keeps completion
// tokens): the others must take no gradient and leave the normaliser.
// depth 2: the second module reads the first's block output; the gradient reaches both, the
// trunk and the first module through that chain.
void check_mtp_gradient(bool restrict, int depth = 1) {
  Model<double> m(ModelConfig::from_json(tiny_v3_mtp_json(depth)));
  m.init_random(11, 0.3);
  Rng rng(5);
  for (const auto& e : m.table().entries()) {
    if (e.shape.size() == 1 && e.trainable) {
      for (size_t i = 0; i < e.numel; ++i) m.params()[e.offset + i] += 0.2 * rng.normal();
    }
  }
  ASSERT_NE(m.mtp(), nullptr);
  const ModelConfig& c = m.config();
  const double lambda = 0.3;
  std::vector<double> coef(batch().n_tokens());
  for (double& v : coef) v = rng.normal();
  Activations<double> acts;
  MtpActs<double> ma;
  auto f = [&] {
    m.forward(batch(), {}, acts);
    double loss = mtp_forward(c, *m.mtp(), m.params().data(), acts, ma);
    if (restrict) {
      mtp_keep_rows(ma, [](int64_t main_row) { return main_row % 2 == 1; });
      loss = ma.loss;
    }
    double s = lambda * loss;
    for (int64_t t = 0; t < batch().n_tokens(); ++t) {
      if (acts.targets[t] >= 0) s += coef[t] * acts.logprob[t];
    }
    return s;
  };
  f();
  EXPECT_EQ(ma.count, restrict ? 2 + 0 + 0 + 1 + 0 : 4 + 1 + 0 + 3 + 0);  // rows in the loss
  for (int64_t t = 0; t < batch().n_tokens(); ++t) {
    if (acts.targets[t] < 0) coef[t] = 0;
  }
  m.zero_grad();
  std::vector<double> dh(acts.h_final.size(), 0.0);
  mtp_backward(c, *m.mtp(), m.params().data(), m.grads().data(), ma, lambda, dh.data());
  m.backward(acts, coef.data(), nullptr, BalanceWeights{}, dh.data(), nullptr);
  const std::vector<double> g = m.grads();
  size_t checked = 0;
  for (const auto& e : m.table().entries()) {
    if (!e.trainable) continue;
    const size_t step = std::max<size_t>(1, e.numel / 5);
    for (size_t i = 0; i < e.numel; i += step) {
      double* x = m.params().data() + e.offset + i;
      const double orig = *x, h = 1e-5;
      *x = orig + h;
      const double fp = f();
      *x = orig - h;
      const double fm = f();
      *x = orig;
      const double fd = (fp - fm) / (2 * h);
      EXPECT_NEAR(g[e.offset + i], fd, 1e-5 * (1 + std::abs(fd))) << e.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 100u);
}

TEST(Mtp, LossGradientReachesModuleAndTrunk) { check_mtp_gradient(false); }
TEST(Mtp, KeptRowsGradient) { check_mtp_gradient(true); }
TEST(Mtp, DepthTwoGradient) { check_mtp_gradient(false, 2); }
TEST(Mtp, DepthTwoKeptRowsGradient) { check_mtp_gradient(true, 2); }

// Depth 2 (DeepSeek-V3 §2.2 with D = 2): module 2 has a row for every main row i with t_{i+2}
// in its sequence, reads t_{i+2} and module 1's block output at (sequence, i), predicts t_{i+3};
// the loss is (1/2)(CE_1 + CE_2) / (module 1's rows with a target), as the paper normalises
// every depth by the same length.
TEST(Mtp, DepthTwoChainsTheModules) {
  Model<double> m(ModelConfig::from_json(tiny_v3_mtp_json(2)));
  m.init_random(3, 0.3);
  const ModelConfig& c = m.config();
  ASSERT_EQ(m.mtp()->modules.size(), 2u);
  Activations<double> acts;
  m.forward(batch(), {}, acts);
  MtpActs<double> ma;
  const double loss = mtp_forward(c, *m.mtp(), m.params().data(), acts, ma);
  ASSERT_EQ(ma.deeper.size(), 1u);
  const MtpActs<double>& m2 = ma.deeper[0];
  EXPECT_EQ(m2.src.size(), 4u + 1 + 0 + 3 + 0);
  EXPECT_EQ(m2.inputs, (std::vector<int32_t>{9, 2, 7, 3, 8, 30, 1, 0}));
  EXPECT_EQ(m2.targets, (std::vector<int32_t>{2, 7, 3, -1, -1, 1, 0, -1}));
  double s1 = 0, s2 = 0;
  for (size_t r = 0; r < ma.targets.size(); ++r) s1 -= ma.targets[r] >= 0 ? ma.logprob[r] : 0;
  for (size_t r = 0; r < m2.targets.size(); ++r) s2 -= m2.targets[r] >= 0 ? m2.logprob[r] : 0;
  EXPECT_EQ(ma.count, 8);
  EXPECT_NEAR(loss, (s1 + s2) / 2 / 8, 1e-12);
  // Module 2 reads module 1's output: changing module 1's block moves module 2's logprobs.
  const std::vector<double> before(m2.logprob.begin(), m2.logprob.end());
  *m.param("model.layers.2.eh_proj.weight") += 0.5;
  mtp_forward(c, *m.mtp(), m.params().data(), acts, ma);
  EXPECT_GT(std::abs(ma.deeper[0].logprob[0] - before[0]), 1e-9);
  // Its tensors are layer L + 1's and survive a save and load.
  EXPECT_TRUE(m.table().contains("model.layers.3.eh_proj.weight"));
  const std::string dir = ::testing::TempDir() + "/aha_mtp2_ckpt";
  Model<float> mf(ModelConfig::from_json(tiny_v3_mtp_json(2)));
  mf.init_random(3, 0.3);
  save_model(mf, dir);
  auto back = load_model<float>(dir);
  EXPECT_EQ(back->config().num_nextn_predict_layers, 2);
  EXPECT_EQ(back->params(), mf.params());
}

// The released code concatenates [enorm(embedding) ; hnorm(hidden)]: swapping the halves of
// eh_proj's input is another function (and the loader must not swap them).
TEST(Mtp, EhProjHalvesAreEmbeddingThenHidden) {
  Model<double> m(ModelConfig::from_json(tiny_v3_mtp_json()));
  m.init_random(3, 0.3);
  const ModelConfig& c = m.config();
  Activations<double> acts;
  MtpActs<double> ma;
  m.forward(batch(), {}, acts);
  const double loss = mtp_forward(c, *m.mtp(), m.params().data(), acts, ma);
  // Make the embedding half matter only: zero the hidden half's columns, then swap them.
  double* w = m.param("model.layers.2.eh_proj.weight");
  const int d = c.hidden_size;
  for (int r = 0; r < d; ++r) std::fill(w + r * 2 * d + d, w + (r + 1) * 2 * d, 0.0);
  const double emb_only = mtp_forward(c, *m.mtp(), m.params().data(), acts, ma);
  for (int r = 0; r < d; ++r) std::swap_ranges(w + r * 2 * d, w + r * 2 * d + d, w + r * 2 * d + d);
  const double hid_only = mtp_forward(c, *m.mtp(), m.params().data(), acts, ma);
  EXPECT_NE(loss, emb_only);
  EXPECT_GT(std::abs(emb_only - hid_only), 1e-6);
  // With the hidden half zeroed, the trunk's states cannot reach the loss.
  for (int r = 0; r < d; ++r) std::swap_ranges(w + r * 2 * d, w + r * 2 * d + d, w + r * 2 * d + d);
  std::fill(acts.h_final.begin(), acts.h_final.end(), 0.5);
  EXPECT_NEAR(mtp_forward(c, *m.mtp(), m.params().data(), acts, ma), emb_only, 1e-12);
}

TEST(Mtp, CheckpointCarriesTheModuleUnderLayerL) {
  Model<float> m(ModelConfig::from_json(tiny_v3_mtp_json()));
  m.init_random(7, 0.3);
  const int L = m.config().num_hidden_layers, d = m.config().hidden_size;
  const std::string pre = "model.layers." + std::to_string(L);
  EXPECT_EQ(m.table().at(pre + ".eh_proj.weight").shape, (std::vector<int64_t>{d, 2 * d}));
  for (const char* name : {".enorm.weight", ".hnorm.weight", ".shared_head.norm.weight",
                           ".shared_head.head.weight", ".embed_tokens.weight",
                           ".self_attn.kv_a_proj_with_mqa.weight", ".mlp.gate.weight"}) {
    EXPECT_TRUE(m.table().contains(pre + name)) << name;
  }
  // A fresh module starts from copies of the embedding and the LM head, as DeepSeek's does.
  const size_t vd = size_t(m.config().vocab_size) * d;
  EXPECT_TRUE(std::equal(m.param("model.embed_tokens.weight"),
                         m.param("model.embed_tokens.weight") + vd,
                         m.param(pre + ".embed_tokens.weight")));
  const std::string dir = ::testing::TempDir() + "/aha_mtp_ckpt";
  save_model(m, dir);
  auto back = load_model<float>(dir);
  EXPECT_EQ(back->config().num_nextn_predict_layers, 1);
  Activations<float> a1, a2;
  MtpActs<float> m1, m2;
  m.forward(batch(), {}, a1);
  back->forward(batch(), {}, a2);
  EXPECT_EQ(mtp_forward(m.config(), *m.mtp(), m.params().data(), a1, m1),
            mtp_forward(back->config(), *back->mtp(), back->params().data(), a2, m2));
}

TEST(Mtp, ConfigChecks) {
  Json j = tiny_v3_mtp_json();
  j["num_nextn_predict_layers"] = 9;
  EXPECT_THROW(ModelConfig::from_json(j), Error);
  j["num_nextn_predict_layers"] = -1;
  EXPECT_THROW(ModelConfig::from_json(j), Error);
  Json hc = testing::tiny_v3_mhc_json();
  hc["num_nextn_predict_layers"] = 1;
  EXPECT_THROW(ModelConfig::from_json(hc), Error);
}

}  // namespace
}  // namespace aha::policy
