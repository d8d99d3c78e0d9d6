// The per-op test table, in the spirit of llama.cpp's test-backend-ops: every sublayer and block
// of every attention kind is listed once, with its finite-difference mode and tolerance, its
// decode-agreement tolerance and its perf mode. Adding an attention kind (or an FFN kind) means
// adding its rows here; the checks themselves are written once below.
//
// Perf mode is opt-in and asserts nothing: AHA_OP_PERF=1 aha_policy_test --gtest_filter='Ops/OpTest.Perf*'
// prints forward/backward/decode times of each row at a larger size.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "aha/core/rng.h"
#include "aha/policy/model.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

using testing::layout_of;

enum class Part { kAttention, kFfn, kBlock, kEngram };
enum class Fd { kInput, kInputAndParams };  // what finite differences perturb
enum class Perf { kNone, kTrain, kTrainAndDecode };

struct Op {
  const char* name;
  Json (*config)();
  int layer;          // the layer under test
  Part part;
  Fd fd;
  double fd_tol;      // relative tolerance of central differences (double precision)
  double decode_tol;  // float: prefill + decode == the training forward; < 0: no decode path
  Perf perf;
};

void PrintTo(const Op& op, std::ostream* os) { *os << op.name; }

std::vector<Op> op_table() {
  using testing::tiny_llama_json, testing::tiny_qwen2_json, testing::tiny_qwen2_sliding_json,
      testing::tiny_v2_json, testing::tiny_v3_json;
  return {
      {"mla_v3", tiny_v3_json, 1, Part::kAttention, Fd::kInputAndParams, 2e-6, 2e-5,
       Perf::kTrainAndDecode},
      {"dsa_v32", []() { return testing::tiny_v32_json(); }, 1, Part::kAttention,
       Fd::kInputAndParams, 2e-6, 2e-5, Perf::kTrainAndDecode},
      {"block_dsa", []() { return testing::tiny_v32_json(); }, 0, Part::kBlock, Fd::kInput, 2e-6,
       2e-5, Perf::kNone},
      {"mla_v2", tiny_v2_json, 0, Part::kAttention, Fd::kInputAndParams, 2e-6, 2e-5,
       Perf::kTrainAndDecode},
      {"gqa_llama", tiny_llama_json, 0, Part::kAttention, Fd::kInputAndParams, 2e-6, 2e-5,
       Perf::kTrainAndDecode},
      {"gqa_qwen2_bias", tiny_qwen2_json, 0, Part::kAttention, Fd::kInputAndParams, 2e-6, 2e-5,
       Perf::kTrainAndDecode},
      {"sliding_window", tiny_qwen2_sliding_json, 1, Part::kAttention, Fd::kInputAndParams,
       2e-6, 2e-5, Perf::kTrainAndDecode},
      {"nsa_blocks_of_1", []() { return testing::tiny_llama_nsa_json(); }, 0, Part::kAttention,
       Fd::kInputAndParams, 2e-6, 2e-5, Perf::kTrainAndDecode},
      {"nsa_blocks_of_2", testing::tiny_llama_nsa2_json, 1, Part::kAttention,
       Fd::kInputAndParams, 2e-6, 2e-5, Perf::kTrainAndDecode},
      {"block_nsa", testing::tiny_llama_nsa2_json, 0, Part::kBlock, Fd::kInput, 2e-6, 2e-5,
       Perf::kNone},
      {"moe_v3_noaux", tiny_v3_json, 1, Part::kFfn, Fd::kInputAndParams, 2e-6, -1, Perf::kTrain},
      {"moe_v2_grouped", tiny_v2_json, 0, Part::kFfn, Fd::kInputAndParams, 2e-6, -1,
       Perf::kTrain},
      {"mlp", tiny_llama_json, 0, Part::kFfn, Fd::kInputAndParams, 2e-6, -1, Perf::kTrain},
      {"block_v3_moe", tiny_v3_json, 1, Part::kBlock, Fd::kInputAndParams, 2e-6, 2e-5,
       Perf::kTrainAndDecode},
      {"block_v3_dense", tiny_v3_json, 0, Part::kBlock, Fd::kInput, 2e-6, 2e-5, Perf::kNone},
      {"block_qwen2", tiny_qwen2_json, 1, Part::kBlock, Fd::kInputAndParams, 2e-6, 2e-5,
       Perf::kNone},
      {"block_sliding", tiny_qwen2_sliding_json, 1, Part::kBlock, Fd::kInput, 2e-6, 2e-5,
       Perf::kNone},
      // Decode of Engram runs through the decoder's caches: tests/rollout (Decode.Engram*).
      {"engram", testing::tiny_llama_engram_json, 1, Part::kEngram, Fd::kInputAndParams, 2e-6,
       -1, Perf::kTrain},
  };
}

std::vector<double> random_vec(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = rng.normal() * scale;
  return v;
}

// Engram rows hash these token ids: a fixed pattern per packed position.
std::vector<int32_t> op_ngram_ids(const ModelConfig& c, const SeqLayout& layout) {
  std::vector<int32_t> tokens(layout.n_tokens());
  for (size_t t = 0; t < tokens.size(); ++t) tokens[t] = static_cast<int32_t>((t * 7 + 3) % c.vocab_size);
  return engram_ngram_ids(tokens.data(), layout, c.engram->max_ngram_size);
}

// y = op(x) for the row's part of layer `layer`; la receives the activations.
template <typename T>
void run_forward(const Op& op, const Model<T>& m, const T* x, T* y, const SeqLayout& layout,
                 LayerActs<T>& la) {
  const LayerP& lp = m.layers()[op.layer];
  const ModelConfig& c = m.config();
  const T* P = m.params().data();
  const int64_t n = layout.n_tokens();
  switch (op.part) {
    case Part::kAttention: lp.attn->forward(P, x, y, layout, la.attn); return;
    case Part::kFfn:
      if (lp.moe) {
        moe_forward(c, lp.moe_p, P, x, y, layout, la.moe, nullptr, false, nullptr);
      } else {
        mlp_forward(lp.mlp_p, P, x, y, n, la.mlp, false, false);
      }
      return;
    case Part::kBlock: {
      std::copy_n(x, n * c.hidden_size, y);
      BlockPass pass;
      pass.layout = &layout;
      block_forward(c, lp, P, y, la, pass);
      return;
    }
    case Part::kEngram: {
      std::copy_n(x, n * c.residual_width(), y);
      const auto ids = op_ngram_ids(c, layout);
      engram_forward(c, lp.engram, P, ids.data(), y, la.engram, layout, EngramState{}, false);
      return;
    }
  }
}

// dx += d<y, dy>/dx and the layer's parameter gradients into m.grads().
template <typename T>
void run_backward(const Op& op, Model<T>& m, const T* x, const T* dy, T* dx,
                  const SeqLayout& layout, const LayerActs<T>& la) {
  const LayerP& lp = m.layers()[op.layer];
  const ModelConfig& c = m.config();
  const T* P = m.params().data();
  T* G = m.grads().data();
  const int64_t n = layout.n_tokens();
  switch (op.part) {
    case Part::kAttention: lp.attn->backward(P, G, x, dy, dx, layout, la.attn); return;
    case Part::kFfn:
      if (lp.moe) {
        moe_backward(c, lp.moe_p, P, G, x, dy, dx, layout, la.moe, BalanceWeights{});
      } else {
        mlp_backward(lp.mlp_p, P, G, x, dy, dx, n, la.mlp);
      }
      return;
    case Part::kBlock: {
      std::vector<T> d(dy, dy + n * c.hidden_size);
      block_backward(c, lp, P, G, la, layout, d.data(), BalanceWeights{});
      for (size_t i = 0; i < d.size(); ++i) dx[i] += d[i];
      return;
    }
    case Part::kEngram: {
      std::vector<T> d(dy, dy + n * c.residual_width());
      engram_backward(c, lp.engram, P, G, la.engram, layout, d.data());
      for (size_t i = 0; i < d.size(); ++i) dx[i] += d[i];
      return;
    }
  }
}

// The parameter offsets of layer l that belong to the row's part.
std::vector<size_t> part_params(const Op& op, const ParamTable& t) {
  const std::string layer = "model.layers." + std::to_string(op.layer) + ".";
  std::vector<size_t> out;
  for (const ParamEntry& e : t.entries()) {
    if (e.name.rfind(layer, 0) != 0 || !e.trainable) continue;
    const bool attn = e.name.find(".self_attn.") != std::string::npos;
    const bool ffn = e.name.find(".mlp.") != std::string::npos;
    const bool engram = e.name.find(".engram.") != std::string::npos;
    if ((op.part == Part::kAttention && !attn) || (op.part == Part::kFfn && !ffn) ||
        (op.part == Part::kEngram && !engram)) {
      continue;
    }
    // A few values of every tensor: first, middle, last.
    for (size_t k : {size_t{0}, e.numel / 2, e.numel - 1}) out.push_back(e.offset + k);
  }
  return out;
}

class OpTest : public ::testing::TestWithParam<Op> {};

TEST_P(OpTest, FiniteDifferences) {
  const Op& op = GetParam();
  Model<double> m(ModelConfig::from_json(op.config()));
  m.init_random(11, 0.3);
  const SeqLayout layout = layout_of({0, 4, 9});
  const int64_t n = layout.n_tokens();
  const int d = m.config().hidden_size;
  std::vector<double> x = random_vec(n * d, 12), c = random_vec(n * d, 13), y(n * d);
  LayerActs<double> la;
  auto f = [&] {
    run_forward(op, m, x.data(), y.data(), layout, la);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += y[i] * c[i];
    return s;
  };
  f();
  std::vector<double> dx(n * d, 0.0);
  m.zero_grad();
  run_backward(op, m, x.data(), c.data(), dx.data(), layout, la);
  auto check = [&](double* v, double g, const std::string& what) {
    const double eps = 1e-5, orig = *v;
    *v = orig + eps;
    const double fp = f();
    *v = orig - eps;
    const double fm = f();
    *v = orig;
    const double fd = (fp - fm) / (2 * eps);
    EXPECT_NEAR(g, fd, op.fd_tol * (1.0 + std::abs(fd))) << op.name << " " << what;
  };
  for (size_t i = 0; i < x.size(); i += std::max<size_t>(1, x.size() / 50)) {
    check(&x[i], dx[i], "dx[" + std::to_string(i) + "]");
  }
  if (op.fd != Fd::kInputAndParams) return;
  const std::vector<size_t> offsets = part_params(op, m.table());
  ASSERT_FALSE(offsets.empty());
  for (size_t off : offsets) {
    check(m.params().data() + off, m.grads()[off], "param@" + std::to_string(off));
  }
}

// Prefill the first `split` tokens, then decode the rest one at a time: every decoded output
// equals the training forward's row for that token (the same function by another path).
TEST_P(OpTest, DecodeMatchesForward) {
  const Op& op = GetParam();
  if (op.decode_tol < 0) GTEST_SKIP() << op.name << " has no decode path of its own";
  Model<float> m(ModelConfig::from_json(op.config()));
  m.init_random(21, 0.3);
  const ModelConfig& c = m.config();
  const int d = c.hidden_size;
  const int64_t n = 9, split = 4;
  const std::vector<double> xd = random_vec(n * d, 22);
  const std::vector<float> x(xd.begin(), xd.end());
  const LayerP& lp = m.layers()[op.layer];
  const SeqLayout full = layout_of({0, n});
  std::vector<float> y_full(n * d);
  LayerActs<float> la;
  run_forward(op, m, x.data(), y_full.data(), full, la);
  for (bool absorbed : {true, false}) {
    CacheRows rows(split * lp.attn->cache_width());
    const SeqLayout pre = layout_of({0, split});
    std::vector<float> h(x.begin(), x.begin() + split * d);
    BlockPass pass;
    pass.layout = &pre;
    pass.keep_inputs = false;
    pass.cache_rows = rows.data();
    if (op.part == Part::kBlock) {
      block_forward(c, lp, m.params().data(), h.data(), la, pass);
    } else {
      std::vector<float> y(split * d);
      lp.attn->forward(m.params().data(), h.data(), y.data(), pre, la.attn);
      lp.attn->cache_rows(la.attn, split, rows.data());
    }
    for (int64_t t = split; t < n; ++t) {
      const int32_t pos = static_cast<int32_t>(t);
      DecodeStep step;
      step.rows = {&rows};
      step.positions = &pos;
      step.absorbed = absorbed;
      std::vector<float> xt(x.begin() + t * d, x.begin() + (t + 1) * d), y(d);
      if (op.part == Part::kBlock) {
        const SeqLayout one = layout_of({0, 1});
        SeqLayout at = one;
        at.positions = {pos};
        BlockPass dp;
        dp.layout = &at;
        dp.keep_inputs = false;
        dp.rowstable = true;
        dp.decode = &step;
        block_forward(c, lp, m.params().data(), xt.data(), la, dp);
        y = xt;
      } else {
        lp.attn->decode(m.params().data(), xt.data(), y.data(), step);
      }
      for (int i = 0; i < d; ++i) {
        ASSERT_NEAR(y[i], y_full[t * d + i], op.decode_tol)
            << op.name << (absorbed ? " absorbed" : " naive") << " token " << t << " dim " << i;
      }
    }
    // only MLA and DSA (MLA over the selected keys) have two decode paths
    if (lp.attn->kind() != AttentionKind::kMla && lp.attn->kind() != AttentionKind::kDsa) break;
  }
}

// Opt-in timings at a larger size (no assertions: speed is measured by benchmarks).
TEST_P(OpTest, Perf) {
  const Op& op = GetParam();
  if (std::getenv("AHA_OP_PERF") == nullptr || op.perf == Perf::kNone) {
    GTEST_SKIP() << "perf mode: set AHA_OP_PERF=1";
  }
  Json j = op.config();
  const bool mla = j["model_type"].get<std::string>().rfind("deepseek", 0) == 0;
  const int d = mla ? 256 : 64 * j["num_attention_heads"].get<int>();
  j["hidden_size"] = d;
  j["max_position_embeddings"] = 1024;
  Model<float> m(ModelConfig::from_json(j));
  m.init_random(31, 0.02);
  const SeqLayout layout = layout_of({0, 256, 512});
  const int64_t n = layout.n_tokens();
  const std::vector<double> xd = random_vec(n * d, 32);
  const std::vector<float> x(xd.begin(), xd.end());
  std::vector<float> y(n * d), dx(n * d, 0.0f);
  LayerActs<float> la;
  using Clock = std::chrono::steady_clock;
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  auto t0 = Clock::now();
  run_forward(op, m, x.data(), y.data(), layout, la);
  auto t1 = Clock::now();
  run_backward(op, m, x.data(), y.data(), dx.data(), layout, la);
  auto t2 = Clock::now();
  double decode_ms = 0;
  if (op.perf == Perf::kTrainAndDecode && op.part == Part::kAttention) {
    // 64 decode steps of one sequence after a 448-token cache.
    const Attention& attn = *m.layers()[op.layer].attn;
    CacheRows rows(448 * attn.cache_width());
    const SeqLayout pre = layout_of({0, 448});
    attn.forward(m.params().data(), x.data(), y.data(), pre, la.attn);
    attn.cache_rows(la.attn, 448, rows.data());
    auto t3 = Clock::now();
    for (int32_t pos = 448; pos < 512; ++pos) {
      DecodeStep step;
      step.rows = {&rows};
      step.positions = &pos;
      attn.decode(m.params().data(), x.data() + pos * d, y.data(), step);
    }
    decode_ms = ms(t3, Clock::now()) / 64;
  }
  std::printf("perf %-16s fwd %8.2f ms  bwd %8.2f ms  decode %6.3f ms/token  (%lld tokens, d=%d)\n",
              op.name, ms(t0, t1), ms(t1, t2), decode_ms, static_cast<long long>(n), d);
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTest, ::testing::ValuesIn(op_table()),
                         [](const ::testing::TestParamInfo<Op>& info) {
                           return std::string(info.param.name);
                         });

// A window is a selection: the kernel's per-row key lists equal to the last `window` positions
// give the window's output, forward and backward.
TEST(AttentionKernel, WindowEqualsSelection) {
  const std::vector<int64_t> starts = {0, 5, 12};
  const int64_t n = starts.back(), window = 3;
  AttnShape w{4, 2, 5, 3, 0.37};
  w.window = window;
  std::vector<std::vector<int32_t>> sel(n);
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    for (int64_t t = starts[s]; t < starts[s + 1]; ++t) {
      const int64_t i = t - starts[s];
      for (int64_t j = std::max<int64_t>(0, i - window + 1); j <= i; ++j) {
        sel[t].push_back(static_cast<int32_t>(j));
      }
    }
  }
  AttnShape s{4, 2, 5, 3, 0.37};
  s.selected = &sel;
  std::vector<double> q = random_vec(n * 20, 1), k = random_vec(n * 10, 2), v = random_vec(n * 6, 3);
  std::vector<double> dout = random_vec(n * 12, 4);
  std::vector<double> ow(n * 12), os(n * 12), lw(4 * n), ls(4 * n);
  attention_forward(q.data(), k.data(), v.data(), ow.data(), lw.data(), starts, w);
  attention_forward(q.data(), k.data(), v.data(), os.data(), ls.data(), starts, s);
  for (size_t i = 0; i < ow.size(); ++i) ASSERT_NEAR(ow[i], os[i], 1e-12) << i;
  std::vector<double> dq1(q.size()), dk1(k.size()), dv1(v.size());
  std::vector<double> dq2(q.size()), dk2(k.size()), dv2(v.size());
  attention_backward(dout.data(), q.data(), k.data(), v.data(), ow.data(), lw.data(), dq1.data(),
                     dk1.data(), dv1.data(), starts, w);
  attention_backward(dout.data(), q.data(), k.data(), v.data(), os.data(), ls.data(), dq2.data(),
                     dk2.data(), dv2.data(), starts, s);
  for (size_t i = 0; i < dq1.size(); ++i) ASSERT_NEAR(dq1[i], dq2[i], 1e-12) << i;
  for (size_t i = 0; i < dk1.size(); ++i) ASSERT_NEAR(dk1[i], dk2[i], 1e-12) << i;
  // And the window changes the result (so the tests above cannot pass vacuously).
  AttnShape full{4, 2, 5, 3, 0.37};
  std::vector<double> of(n * 12), lf(4 * n);
  attention_forward(q.data(), k.data(), v.data(), of.data(), lf.data(), starts, full);
  double diff = 0;
  for (size_t i = 0; i < of.size(); ++i) diff += std::abs(of[i] - ow[i]);
  EXPECT_GT(diff, 1e-3);
}

// Qwen2's sliding-window keys pick the kind per layer; bad values name the key.
TEST(AttentionKind, ChosenFromConfig) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_qwen2_sliding_json());
  EXPECT_EQ(attention_kind(c, 0), AttentionKind::kGqa);
  EXPECT_EQ(attention_kind(c, 1), AttentionKind::kSlidingWindow);
  EXPECT_EQ(attention_kind(ModelConfig::from_json(testing::tiny_v3_json()), 0),
            AttentionKind::kMla);
  Json off = testing::tiny_qwen2_sliding_json();
  off["use_sliding_window"] = false;  // as the published Qwen2 configs ship
  EXPECT_EQ(attention_kind(ModelConfig::from_json(off), 1), AttentionKind::kGqa);
  Json types = testing::tiny_qwen2_json();
  types["sliding_window"] = 4;
  types["layer_types"] = {"sliding_attention", "full_attention"};
  EXPECT_EQ(attention_kind(ModelConfig::from_json(types), 0), AttentionKind::kSlidingWindow);
  EXPECT_EQ(attention_kind(ModelConfig::from_json(types), 1), AttentionKind::kGqa);
  Json bad = testing::tiny_qwen2_sliding_json();
  bad["sliding_window"] = 0;
  try {
    Model<float> model(ModelConfig::from_json(bad));
    FAIL() << "sliding_window 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sliding_window"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aha::policy
