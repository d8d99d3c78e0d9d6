// DeepSeek Sparse Attention (attn_dsa.cpp): dense MLA when every key fits, the indexer's scores,
// RoPE layout and tie order, decode against the prefill, and the indexer loss's gradient.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "aha/core/rng.h"
#include "aha/policy/indexer_loss.h"
#include "aha/policy/model.h"
#include "aha/policy/presets.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

using testing::layout_of;

// Slots as attn_dsa.cpp lays them out after MLA's 11: the indexer's rotated queries [n, H_I,
// d_I], rotated keys [n, d_I], keys before the norm, the norm's mean and 1/std, the weights.
enum { kIq = 11, kIk, kIkRaw, kIkMean, kIkRstd, kIw };

std::vector<double> normal_vec(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = rng.normal();
  return v;
}

// Non-trivial norms and biases (init leaves them at 1 and 0).
template <typename T>
void perturb_vectors(Model<T>& m, uint64_t seed) {
  Rng rng(seed);
  for (const auto& e : m.table().entries()) {
    if (e.shape.size() != 1 || !e.trainable) continue;
    for (size_t i = 0; i < e.numel; ++i) m.params()[e.offset + i] += T(0.2 * rng.normal());
  }
}

Batch two_sequences() {
  std::vector<int32_t> a(20), b(9);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int32_t>((i * 7 + 1) % 37);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int32_t>((i * 5 + 3) % 37);
  return Batch::from_sequences({a, b});
}

// index_topk >= every length: the same logprobs as the deepseek_v3 model with the same MLA and
// MoE weights, bit for bit; a small index_topk changes them.
TEST(Dsa, TopkAtLeastTheLengthIsDenseMlaBitForBit) {
  Model<float> dense(ModelConfig::from_json(testing::tiny_v3_json()));
  dense.init_random(3, 0.3);
  perturb_vectors(dense, 4);
  const Batch batch = two_sequences();
  Activations<float> want;
  dense.forward(batch, {}, want);
  for (int topk : {20, 64, 3}) {
    Model<float> sparse(ModelConfig::from_json(testing::tiny_v32_json(topk)));
    sparse.init_random(5, 0.3);
    for (const auto& e : dense.table().entries()) {
      std::copy_n(dense.params().data() + e.offset, e.numel, sparse.param(e.name));
    }
    Activations<float> got;
    sparse.forward(batch, {}, got);
    int differ = 0;
    for (int64_t t = 0; t < batch.n_tokens(); ++t) {
      if (std::isnan(want.logprob[t])) continue;
      if (topk >= 20) {
        EXPECT_EQ(got.logprob[t], want.logprob[t]) << "topk " << topk << " token " << t;
      }
      differ += got.logprob[t] != want.logprob[t];
    }
    if (topk < 20) EXPECT_GT(differ, 10) << "index_topk 3 left the model dense";
  }
}

struct Layer0 {
  std::unique_ptr<Model<double>> m;
  AttnActs<double> a;
};

Layer0 run_layer0(const Json& j, const SeqLayout& layout) {
  Layer0 r{std::make_unique<Model<double>>(ModelConfig::from_json(j)), {}};
  r.m->init_random(7, 0.3);
  perturb_vectors(*r.m, 8);
  const int d = r.m->config().hidden_size;
  const std::vector<double> x = normal_vec(layout.n_tokens() * d, 9);
  std::vector<double> y(x.size());
  r.m->layers()[0].attn->forward(r.m->params().data(), x.data(), y.data(), layout, r.a);
  return r;
}

// Each query keeps the index_topk keys of highest I[t,s] = sum_h w[t,h] ReLU(q[t,h] . k[s]),
// in ascending order; a row with t + 1 <= index_topk keeps them all.
TEST(Dsa, SelectionIsTheTopIndexScores) {
  const SeqLayout layout = layout_of({0, 14, 20});
  const Layer0 r = run_layer0(testing::tiny_v32_json(4), layout);
  const ModelConfig& c = r.m->config();
  const int HI = c.index_n_heads, dI = c.index_head_dim;
  for (int64_t t = 0; t < layout.n_tokens(); ++t) {
    const int64_t i = layout.positions[t], first = t - i;
    std::vector<double> score(i + 1, 0.0);
    for (int64_t s = 0; s <= i; ++s) {
      for (int h = 0; h < HI; ++h) {
        double u = 0;
        for (int e = 0; e < dI; ++e) {
          u += r.a[kIq][(t * HI + h) * dI + e] * r.a[kIk][(first + s) * dI + e];
        }
        score[s] += r.a[kIw][t * HI + h] * std::max(u, 0.0);
      }
    }
    std::vector<int32_t> want(i + 1);
    std::iota(want.begin(), want.end(), 0);
    std::stable_sort(want.begin(), want.end(),
                     [&](int32_t p, int32_t q) { return score[p] > score[q]; });
    want.resize(std::min<int64_t>(4, i + 1));
    std::sort(want.begin(), want.end());
    EXPECT_EQ(r.a.selected[t], want) << "token " << t;
  }
}

// With the head weights at zero every score ties at 0: the earliest keys win.
TEST(Dsa, TiesGoToTheEarlierKey) {
  Json j = testing::tiny_v32_json(3);
  Model<double> m(ModelConfig::from_json(j));
  m.init_random(7, 0.3);
  const auto& w = m.table().at("model.layers.0.self_attn.indexer.weights_proj.weight");
  std::fill_n(m.params().data() + w.offset, w.numel, 0.0);
  const SeqLayout layout = layout_of({0, 10});
  const int d = m.config().hidden_size;
  const std::vector<double> x = normal_vec(10 * d, 9);
  std::vector<double> y(x.size());
  AttnActs<double> a;
  m.layers()[0].attn->forward(m.params().data(), x.data(), y.data(), layout, a);
  for (int64_t t = 3; t < 10; ++t) EXPECT_EQ(a.selected[t], (std::vector<int32_t>{0, 1, 2}));
}

// The indexer rotates the FIRST qk_rope_head_dim values of its key in rotate-half pairs
// (i, i + d/2), as DeepSeek's fixed V3.2 code does: MLA's interleaved pairs (2i, 2i + 1) give
// other keys, so an indexer using MLA's layout fails here.
TEST(Dsa, IndexerRopeIsRotateHalfOnTheFirstDims) {
  const SeqLayout layout = layout_of({0, 12});
  const Layer0 r = run_layer0(testing::tiny_v32_json(4), layout);
  const ModelConfig& c = r.m->config();
  const int dI = c.index_head_dim, dr = c.qk_rope_head_dim, half = dr / 2;
  const double* g = r.m->params().data() +
                    r.m->table().at("model.layers.0.self_attn.indexer.k_norm.weight").offset;
  const double* b = r.m->params().data() +
                    r.m->table().at("model.layers.0.self_attn.indexer.k_norm.bias").offset;
  double off_interleaved = 0;
  for (int64_t t = 0; t < 12; ++t) {
    std::vector<double> k(dI);  // LayerNorm(k_raw), eps 1e-6, before RoPE
    const double* raw = r.a[kIkRaw].data() + t * dI;
    double mean = std::accumulate(raw, raw + dI, 0.0) / dI, var = 0;
    for (int e = 0; e < dI; ++e) var += (raw[e] - mean) * (raw[e] - mean);
    for (int e = 0; e < dI; ++e) k[e] = (raw[e] - mean) / std::sqrt(var / dI + 1e-6) * g[e] + b[e];
    std::vector<double> halfk = k, inter = k;
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(t) * static_cast<float>(r.m->rope().inv_freq()[i]);
      const double cs = static_cast<float>(std::cos(angle));
      const double sn = static_cast<float>(std::sin(angle));
      halfk[i] = k[i] * cs - k[i + half] * sn;
      halfk[i + half] = k[i] * sn + k[i + half] * cs;
      inter[2 * i] = k[2 * i] * cs - k[2 * i + 1] * sn;
      inter[2 * i + 1] = k[2 * i] * sn + k[2 * i + 1] * cs;
    }
    for (int e = 0; e < dI; ++e) {
      EXPECT_NEAR(r.a[kIk][t * dI + e], halfk[e], 1e-9) << "token " << t << " dim " << e;
      off_interleaved = std::max(off_interleaved, std::abs(r.a[kIk][t * dI + e] - inter[e]));
    }
  }
  EXPECT_GT(off_interleaved, 1e-2);
}

// Decode of token T-1 after a prefill of T-1 tokens: the prefill's row and selection.
TEST(Dsa, DecodeOfOneTokenAfterAPrefillIsThePrefillRow) {
  Model<float> m(ModelConfig::from_json(testing::tiny_v32_json(5)));
  m.init_random(21, 0.3);
  perturb_vectors(m, 22);
  const int d = m.config().hidden_size;
  const int64_t T = 24;
  const std::vector<double> xd = normal_vec(T * d, 23);
  const std::vector<float> x(xd.begin(), xd.end());
  const Attention& attn = *m.layers()[1].attn;
  std::vector<float> y_full(T * d), y_pre((T - 1) * d), y(d);
  AttnActs<float> full, pre;
  attn.forward(m.params().data(), x.data(), y_full.data(), layout_of({0, T}), full);
  for (bool absorbed : {true, false}) {
    CacheRows rows((T - 1) * attn.cache_width());
    attn.forward(m.params().data(), x.data(), y_pre.data(), layout_of({0, T - 1}), pre);
    attn.cache_rows(pre, T - 1, rows.data());
    const int32_t pos = static_cast<int32_t>(T - 1);
    std::vector<int32_t> sel;
    DecodeStep step;
    step.rows = {&rows};
    step.positions = &pos;
    step.absorbed = absorbed;
    step.selections = &sel;
    attn.decode(m.params().data(), x.data() + (T - 1) * d, y.data(), step);
    for (int i = 0; i < d; ++i) EXPECT_NEAR(y[i], y_full[(T - 1) * d + i], 2e-5) << i;
    EXPECT_EQ(sel, full.selected[T - 1]);
  }
}

// The indexer loss in fp64: central differences of every indexer tensor, and no gradient
// anywhere else (its inputs are detached), over every causal key and over the selection.
TEST(Dsa, IndexerLossGradientMatchesFiniteDifferences) {
  Model<double> m(ModelConfig::from_json(testing::tiny_v32_json(3)));
  m.init_random(31, 0.3);
  perturb_vectors(m, 32);
  const Batch batch = Batch::from_sequences({{1, 5, 9, 2, 7, 3, 11, 4}, {4, 4, 8, 0, 6}, {6}});
  for (IndexerSupport support : {IndexerSupport::kDense, IndexerSupport::kSparse}) {
    Activations<double> acts;
    auto f = [&] {
      m.forward(batch, {}, acts);
      std::vector<double> keep = m.grads();
      const double l = indexer_loss(m, acts, support, 0.0);
      m.grads() = keep;
      return l;
    };
    m.forward(batch, {}, acts);
    m.zero_grad();
    const double loss = indexer_loss(m, acts, support, 1.0);
    EXPECT_GT(loss, 0.0);
    const std::vector<double> grads = m.grads();
    int checked = 0;
    for (const auto& e : m.table().entries()) {
      const bool indexer = e.name.find(".indexer.") != std::string::npos;
      for (size_t i = 0; i < e.numel; ++i) {
        const size_t o = e.offset + i;
        if (!indexer) {
          ASSERT_EQ(grads[o], 0.0) << e.name << " got a gradient from the indexer loss";
          continue;
        }
        if (i % std::max<size_t>(1, e.numel / 8) != 0) continue;
        double& p = m.params()[o];
        const double orig = p, eps = 1e-6;
        p = orig + eps;
        const double fp = f();
        p = orig - eps;
        const double fm = f();
        p = orig;
        const double fd = (fp - fm) / (2 * eps);
        EXPECT_NEAR(grads[o], fd, 1e-6 * (1 + std::abs(fd))) << e.name << "[" << i << "]";
        ++checked;
      }
    }
    EXPECT_GT(checked, 40);
  }
}

// Opt-in timing of one layer's decode step over an L-token cache of random rows, dense MLA
// (preset small) against DSA (small-dsa: 256 keys per query), one sequence. No assertions:
//   AHA_OP_PERF=1 aha_policy_test --gtest_filter=Dsa.DecodePerf
TEST(Dsa, DecodePerf) {
  if (std::getenv("AHA_OP_PERF") == nullptr) GTEST_SKIP() << "perf mode: set AHA_OP_PERF=1";
  for (const char* preset : {"small", "small-dsa"}) {
    Json j = preset_config(preset);
    j["max_position_embeddings"] = 32768;
    Model<float> m(ModelConfig::from_json(j));
    m.init_random(1, 0.02);
    const Attention& attn = *m.layers()[1].attn;
    const int d = m.config().hidden_size;
    const std::vector<double> hd = normal_vec(d, 2);
    const std::vector<float> h(hd.begin(), hd.end());
    std::vector<float> y(d);
    for (int64_t L : {1024, 4096, 16384, 32000}) {
      const std::vector<double> rd = normal_vec(L * attn.cache_width(), 3);
      CacheRows rows(rd.begin(), rd.end());
      const int steps = 16;
      const auto t0 = std::chrono::steady_clock::now();
      for (int32_t pos = int32_t(L); pos < L + steps; ++pos) {
        DecodeStep step;
        step.rows = {&rows};
        step.positions = &pos;
        attn.decode(m.params().data(), h.data(), y.data(), step);
      }
      const double ms = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - t0).count() / steps;
      std::printf("decode %-9s L=%6lld  %8.3f ms/token/layer  (%.0f tokens/s per layer)\n",
                  preset, static_cast<long long>(L), ms, 1000.0 / ms);
    }
  }
}

}  // namespace
}  // namespace aha::policy
