// Finite-difference gradient checks in double precision: every layer on its own, then whole
// tiny V2, V3, Llama and Qwen2 models (every parameter tensor sampled).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "aha/core/rng.h"
#include "aha/policy/model.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

using testing::layout_of;

using Vec = std::vector<double>;

Vec random_vec(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  Vec v(n);
  for (double& x : v) x = rng.normal() * scale;
  return v;
}

// Central differences of f at x[i] compared with the analytic gradient g[i].
void expect_grad(const std::function<double()>& f, double* x, const double* g, size_t i,
                 const std::string& what, double eps = 1e-5, double tol = 2e-6) {
  double orig = x[i];
  x[i] = orig + eps;
  double fp = f();
  x[i] = orig - eps;
  double fm = f();
  x[i] = orig;
  double fd = (fp - fm) / (2 * eps);
  EXPECT_NEAR(g[i], fd, tol * (1.0 + std::abs(fd))) << what << "[" << i << "]";
}

void check_all(const std::function<double()>& f, Vec& x, const Vec& g, const std::string& what,
               size_t max_checks = 40) {
  size_t step = std::max<size_t>(1, x.size() / max_checks);
  for (size_t i = 0; i < x.size(); i += step) expect_grad(f, x.data(), g.data(), i, what);
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(GradCheck, RmsNorm) {
  const int n = 5, d = 7, stride = 9;
  Vec x = random_vec(n * stride, 1), w = random_vec(d, 2), c = random_vec(n * d, 3);
  Vec y(n * d), rstd(n);
  auto f = [&] {
    rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), n, d, 1e-6, stride);
    return dot(y, c);
  };
  f();
  Vec dx(n * stride, 0.0), dw(d, 0.0);
  rmsnorm_backward(c.data(), x.data(), w.data(), rstd.data(), dx.data(), dw.data(), n, d, stride);
  check_all(f, x, dx, "dx");
  check_all(f, w, dw, "dw");
}

TEST(GradCheck, RopeBackwardIsTranspose) {
  for (const Json& j : {testing::tiny_v3_json(), testing::tiny_llama_json()}) {
    ModelConfig cfg = ModelConfig::from_json(j);
    RopeTable rope(cfg, 32);
    const int n = 6, H = 2, dim = rope.dim();
    std::vector<int32_t> pos = {0, 1, 5, 9, 17, 31};
    Vec x = random_vec(n * H * dim, 4), c = random_vec(n * H * dim, 5);
    auto f = [&] {
      Vec y = x;
      rope.apply(y.data(), pos.data(), n, H, H * dim, dim, false);
      return dot(y, c);
    };
    Vec g = c;
    rope.apply(g.data(), pos.data(), n, H, H * dim, dim, true);
    check_all(f, x, g, "rope");
  }
}

TEST(GradCheck, SwiGlu) {
  const int n = 4, inter = 6;
  Vec g = random_vec(n * inter, 6), u = random_vec(n * inter, 7), c = random_vec(n * inter, 8);
  Vec a(n * inter);
  auto f = [&] {
    swiglu_forward(g.data(), u.data(), inter, a.data(), n, inter);
    return dot(a, c);
  };
  Vec dg(n * inter), du(n * inter);
  swiglu_backward(c.data(), g.data(), u.data(), inter, dg.data(), du.data(), n, inter);
  check_all(f, g, dg, "dg");
  check_all(f, u, du, "du");
}

TEST(GradCheck, AttentionCausalPackedGqa) {
  AttnShape s{4, 2, 5, 3, 0.37};
  std::vector<int64_t> starts = {0, 3, 4, 9};  // three sequences, one of length 1
  const int64_t n = starts.back();
  Vec q = random_vec(n * 4 * 5, 9), k = random_vec(n * 2 * 5, 10), v = random_vec(n * 2 * 3, 11);
  Vec c = random_vec(n * 4 * 3, 12), o(n * 4 * 3), lse(4 * n);
  auto f = [&] {
    attention_forward(q.data(), k.data(), v.data(), o.data(), lse.data(), starts, s);
    return dot(o, c);
  };
  f();
  Vec dq(q.size()), dk(k.size()), dv(v.size());
  attention_backward(c.data(), q.data(), k.data(), v.data(), o.data(), lse.data(), dq.data(),
                     dk.data(), dv.data(), starts, s);
  check_all(f, q, dq, "dq", 80);
  check_all(f, k, dk, "dk", 80);
  check_all(f, v, dv, "dv", 80);
}

TEST(GradCheck, LogprobHead) {
  const int n = 7, d = 6, V = 11;
  Vec h = random_vec(n * d, 13), w = random_vec(V * d, 14), c = random_vec(n, 15);
  Vec e = random_vec(n, 16);  // entropy bonus weights
  std::vector<int32_t> targets = {3, 0, -1, 10, 5, 5, -1};
  Vec lp(n), lse(n), ent(n);
  for (double temp : {1.0, 0.7}) {
    for (bool with_entropy : {false, true}) {
      auto f = [&] {
        logprob_forward(h.data(), w.data(), targets.data(), lp.data(), ent.data(), lse.data(), n,
                        d, V, temp, nullptr);
        double s = 0;
        for (int t = 0; t < n; ++t) {
          if (targets[t] < 0) continue;
          s += lp[t] * c[t] + (with_entropy ? ent[t] * e[t] : 0.0);
        }
        return s;
      };
      f();
      Vec dh(n * d, 0.0), dw(V * d, 0.0);
      logprob_backward(c.data(), with_entropy ? e.data() : nullptr, h.data(), w.data(),
                       targets.data(), lse.data(), dh.data(), dw.data(), n, d, V, temp, nullptr);
      check_all(f, h, dh, with_entropy ? "dh (entropy)" : "dh");
      check_all(f, w, dw, with_entropy ? "dw (entropy)" : "dw");
    }
  }
}

// A block's input gradient: perturb the block input, objective = <block output, c>.
template <typename Fwd, typename Bwd>
void check_block_input(int64_t n, int d, Fwd fwd, Bwd bwd, const std::string& what) {
  Vec x = random_vec(n * d, 16), c = random_vec(n * d, 17), y(n * d);
  auto f = [&] {
    fwd(x.data(), y.data());
    return dot(y, c);
  };
  f();
  Vec dx(n * d, 0.0);
  bwd(x.data(), c.data(), dx.data());
  check_all(f, x, dx, what, 60);
}

TEST(GradCheck, BlockInputs) {
  SeqLayout layout = layout_of({0, 4, 9});
  const int64_t n = layout.n_tokens();
  for (const Json& j : {testing::tiny_v3_json(), testing::tiny_v2_json()}) {
    ModelConfig c = ModelConfig::from_json(j);
    Model<double> m(c);
    m.init_random(3, 0.3);
    const LayerP& lp = m.layers().back();
    ASSERT_TRUE(lp.moe);
    const double* P = m.params().data();
    ASSERT_EQ(lp.attn->kind(), AttentionKind::kMla);
    AttnActs<double> ma;
    check_block_input(
        n, c.hidden_size,
        [&](const double* x, double* y) { lp.attn->forward(P, x, y, layout, ma); },
        [&](const double* x, const double* dy, double* dx) {
          lp.attn->backward(P, m.grads().data(), x, dy, dx, layout, ma);
        },
        std::string("mla dx ") + c.type_name());
    MoeActs<double> moe;
    check_block_input(
        n, c.hidden_size,
        [&](const double* x, double* y) {
          moe_forward(c, lp.moe_p, P, x, y, layout, moe, nullptr, false, nullptr);
        },
        [&](const double* x, const double* dy, double* dx) {
          moe_backward(c, lp.moe_p, P, m.grads().data(), x, dy, dx, layout, moe, BalanceWeights{});
        },
        std::string("moe dx ") + c.type_name());
  }
  for (const Json& j : {testing::tiny_qwen2_json(), testing::tiny_qwen2_sliding_json()}) {
    ModelConfig c = ModelConfig::from_json(j);
    Model<double> m(c);
    m.init_random(4, 0.3);
    const LayerP& lp = m.layers().back();
    AttnActs<double> ga;
    check_block_input(
        n, c.hidden_size,
        [&](const double* x, double* y) { lp.attn->forward(m.params().data(), x, y, layout, ga); },
        [&](const double* x, const double* dy, double* dx) {
          lp.attn->backward(m.params().data(), m.grads().data(), x, dy, dx, layout, ga);
        },
        std::string(attention_kind_name(lp.attn->kind())) + " dx");
  }
}

// The forward options a model-level check exercises: each changes the function differentiated.
struct ModelCheckOpts {
  double aux_weight = 0.0;    // of the sequence-wise balance loss (x aux_loss_alpha)
  double batch_weight = 0.0;  // of the device-level and communication losses (x their alphas)
  double temperature = 1.0;
  bool kept_sets = false;   // keep-sampling-mask: a kept id set for some tokens
  bool replay = false;      // keep routing: every MoE layer replays a fixed, non-greedy selection
  bool entropy = false;     // an entropy bonus term (weights per token) in the objective
};

// Kept sets for some tokens (ascending, containing the target), none for the others.
std::vector<std::vector<int32_t>> kept_sets_for(const std::vector<int32_t>& targets, int vocab) {
  std::vector<std::vector<int32_t>> sets(targets.size());
  Rng rng(31);
  for (size_t t = 0; t < targets.size(); ++t) {
    if (targets[t] < 0 || t % 3 == 2) continue;  // every third token: the whole vocabulary
    for (int v = 0; v < vocab; ++v) {
      if (v == targets[t] || rng.uniform() < 0.3) sets[t].push_back(v);
    }
  }
  return sets;
}

// A routing to replay that the router would not choose: the K experts after the greedy ones.
std::vector<std::vector<int32_t>> shifted_routing(const ModelConfig& c,
                                                  const Activations<double>& acts) {
  std::vector<std::vector<int32_t>> replay;
  const int E = c.n_routed_experts;
  for (const auto& la : acts.layers) {
    if (la.moe.topk.empty()) continue;
    std::vector<int32_t> r = la.moe.topk;
    for (int32_t& e : r) e = (e + 1) % E;
    // Keep each token's K ids distinct after the shift.
    const int K = c.num_experts_per_tok;
    for (size_t t = 0; t < r.size() / K; ++t) {
      std::vector<bool> used(E, false);
      for (int k = 0; k < K; ++k) {
        int32_t& e = r[t * K + k];
        while (used[e]) e = (e + 1) % E;
        used[e] = true;
      }
    }
    replay.push_back(std::move(r));
  }
  return replay;
}

// Whole model: objective sum_t c_t logprob_t (+ weighted balance loss), every tensor sampled.
void check_model(const Json& j, double init_std, const ModelCheckOpts& o = {}) {
  ModelConfig c = ModelConfig::from_json(j);
  Model<double> m(c);
  m.init_random(11, init_std);
  // Give norms and biases non-trivial values so their gradients are exercised.
  Rng rng(5);
  for (const auto& e : m.table().entries()) {
    if (e.shape.size() == 1 && e.trainable) {
      for (size_t i = 0; i < e.numel; ++i) m.params()[e.offset + i] += 0.2 * rng.normal();
    }
  }
  Batch batch = Batch::from_sequences({{1, 5, 9, 2, 7, 3}, {4, 4, 8}, {6}, {2, 3, 30, 1, 0}});
  Vec coef = random_vec(batch.n_tokens(), 21);
  Activations<double> acts;
  ForwardOptions fo;
  fo.temperature = o.temperature;
  fo.entropy = o.entropy;
  m.forward(batch, fo, acts);
  Vec ecoef = random_vec(batch.n_tokens(), 23);
  const auto sets = kept_sets_for(acts.targets, c.vocab_size);
  KeptSets kept;
  for (const auto& s : sets) kept.push_back(s.empty() ? nullptr : &s);
  if (o.kept_sets) fo.kept_ids = &kept;
  std::vector<std::vector<int32_t>> replay;
  if (o.replay) {
    replay = shifted_routing(c, acts);
    ASSERT_FALSE(replay.empty()) << "replay needs an MoE model";
    fo.replay_topk = &replay;
  }
  auto f = [&] {
    m.forward(batch, fo, acts);
    double s = o.aux_weight * c.aux_loss_alpha * acts.aux_loss +
               o.batch_weight * (c.device_balance_alpha * acts.device_loss +
                                 c.comm_balance_alpha * acts.comm_loss);
    for (int64_t t = 0; t < batch.n_tokens(); ++t) {
      if (acts.targets[t] >= 0) s += coef[t] * acts.logprob[t];
      if (o.entropy && acts.targets[t] >= 0) s += ecoef[t] * acts.entropy[t];
    }
    return s;
  };
  f();
  if (o.replay) {
    size_t li = 0;
    for (const auto& la : acts.layers) {
      if (!la.moe.topk.empty()) EXPECT_EQ(la.moe.topk, replay[li++]) << "replay not applied";
    }
  }
  for (int64_t t = 0; t < batch.n_tokens(); ++t) {
    if (acts.targets[t] < 0) coef[t] = std::nan("");  // must never be read
  }
  m.zero_grad();
  m.backward(acts, coef.data(), o.entropy ? ecoef.data() : nullptr,
             {.seq = o.aux_weight, .batch = o.batch_weight}, nullptr, nullptr);
  Vec grads = m.grads();
  for (const auto& e : m.table().entries()) {
    if (!e.trainable) continue;
    size_t step = std::max<size_t>(1, e.numel / 6);
    for (size_t i = 0; i < e.numel; i += step) {
      expect_grad(f, m.params().data(), grads.data(), e.offset + i, e.name, 1e-5, 1e-5);
    }
  }
}

TEST(GradCheck, WholeModelDeepseekV3) { check_model(testing::tiny_v3_json(), 0.3); }
TEST(GradCheck, WholeModelDeepseekV3WithBalanceLoss) {
  Json j = testing::tiny_v3_json();
  j["aux_loss_alpha"] = 0.5;
  check_model(j, 0.3, {.aux_weight = 1.0});
}
TEST(GradCheck, WholeModelDeepseekV2) {
  Json j = testing::tiny_v2_json();
  j["aux_loss_alpha"] = 0.5;
  check_model(j, 0.3, {.aux_weight = 1.0});
}
TEST(GradCheck, WholeModelLlamaTied) { check_model(testing::tiny_llama_json(), 0.3); }
TEST(GradCheck, WholeModelQwen2) { check_model(testing::tiny_qwen2_json(), 0.3); }
// Sequences of up to 6 tokens through a window of 3: the mask cuts keys in layer 1.
TEST(GradCheck, WholeModelSlidingWindow) {
  check_model(testing::tiny_qwen2_sliding_json(), 0.3);
  check_model(testing::tiny_qwen2_sliding_json(), 0.3, {.temperature = 0.8, .kept_sets = true});
}

// The options GRPO passes to the forward, alone and together, at model level: the backward
// must differentiate the same function (a kept set dropped in backward fails KeptSets).
TEST(GradCheck, WholeModelTemperature) {
  check_model(testing::tiny_v3_json(), 0.3, {.temperature = 0.6});
  check_model(testing::tiny_qwen2_json(), 0.3, {.temperature = 1.7});
}
TEST(GradCheck, WholeModelKeptSets) {
  check_model(testing::tiny_v3_json(), 0.3, {.kept_sets = true});
  check_model(testing::tiny_llama_json(), 0.3, {.temperature = 0.8, .kept_sets = true});
}
TEST(GradCheck, WholeModelEntropyBonus) {
  check_model(testing::tiny_qwen2_json(), 0.3, {.entropy = true});
  check_model(testing::tiny_v3_json(), 0.3, {.temperature = 0.7, .kept_sets = true, .entropy = true});
}
// Hyper-connections: the streams' weights, the Sinkhorn unrolled through its 20 steps, the head
// collapse and the embedding copied into every stream, alone and with GRPO's forward options.
TEST(GradCheck, WholeModelHyperConnections) {
  check_model(testing::tiny_v3_mhc_json(), 0.3);
  check_model(testing::tiny_llama_mhc_json(), 0.3, {.temperature = 0.8, .kept_sets = true});
  check_model(testing::tiny_v3_mhc_json(), 0.3,
              {.temperature = 0.7, .kept_sets = true, .replay = true});
}

// Engram: the gate (signed square root), value projection, dilated conv and its norms, the
// looked-up table rows; with one stream and on every hyper-connection stream (V4.1 style).
TEST(GradCheck, WholeModelEngram) {
  check_model(testing::tiny_llama_engram_json(), 0.3);
  check_model(testing::tiny_v3_mhc_engram_json(), 0.3, {.temperature = 0.8, .kept_sets = true});
}

// Native sparse attention with its selection held fixed (a perturbation of 1e-5 does not move it).
TEST(GradCheck, WholeModelNativeSparseAttention) {
  check_model(testing::tiny_llama_nsa_json(), 0.3);
  check_model(testing::tiny_llama_nsa2_json(), 0.3, {.temperature = 0.8, .kept_sets = true});
}

// DeepSeek Sparse Attention with its selection held fixed: rows past index_topk attend to 3
// keys; the indexer's tensors get no gradient from the logprobs (and none by differences).
TEST(GradCheck, WholeModelDeepSeekSparseAttention) {
  check_model(testing::tiny_v32_json(), 0.3);
  check_model(testing::tiny_v32_json(2), 0.3, {.temperature = 0.8, .kept_sets = true});
}

// Device-limited routing only changes which experts are chosen; the backward through the kept
// ones is the same function (V3: 2 devices of 4 experts, one kept; V2: 3 devices of 2, one kept).
TEST(GradCheck, WholeModelDeviceLimitedRouting) {
  Json v3 = testing::tiny_v3_json();
  v3["n_devices"] = 2;
  v3["topk_devices"] = 1;
  check_model(v3, 0.3);
  Json v2 = testing::tiny_v2_json();
  v2["n_devices"] = 3;
  v2["topk_devices"] = 1;
  v2["topk_group"] = 1;
  v2["aux_loss_alpha"] = 0.5;
  check_model(v2, 0.3, {.aux_weight = 1.0});
}

// DeepSeek-V2's device-level and communication balance losses, each alone and together with
// the sequence-wise loss: V3 (sigmoid scores, normalised for the losses) on 2 devices without a
// device limit, V2 (softmax) on 3 devices with one kept per token, and replayed routing.
TEST(GradCheck, WholeModelDeviceBalanceLosses) {
  Json v3 = testing::tiny_v3_json();
  v3["n_devices"] = 2;
  v3["device_balance_alpha"] = 0.7;
  check_model(v3, 0.3, {.batch_weight = 1.0});
  v3.erase("device_balance_alpha");
  v3["comm_balance_alpha"] = 0.6;
  check_model(v3, 0.3, {.batch_weight = 0.8});
  Json v2 = testing::tiny_v2_json();
  v2["n_devices"] = 3;
  v2["topk_devices"] = 1;
  v2["topk_group"] = 1;
  v2["aux_loss_alpha"] = 0.5;
  v2["device_balance_alpha"] = 0.4;
  v2["comm_balance_alpha"] = 0.9;
  check_model(v2, 0.3, {.aux_weight = 1.0, .batch_weight = 1.5});
  check_model(v2, 0.3, {.aux_weight = 0.5, .batch_weight = 0.7, .replay = true});
}

TEST(GradCheck, WholeModelReplayedRouting) {
  Json j = testing::tiny_v2_json();
  j["aux_loss_alpha"] = 0.5;
  check_model(j, 0.3, {.aux_weight = 1.0, .replay = true});
  check_model(testing::tiny_v3_json(), 0.3,
              {.temperature = 0.7, .kept_sets = true, .replay = true});
}

}  // namespace
}  // namespace aha::policy
