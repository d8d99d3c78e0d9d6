// The optimizer splits large tensors into pieces for its threads: the update must give the
// bits of one plain loop per value, and the gradient norm the same bits for any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "aha/core/rng.h"
#include "aha/core/threading.h"
#include "aha/policy/optimizer.h"

namespace aha::policy {
namespace {

// A table with a tensor of many pieces, a small one, and a lookup table whose gradient touches
// only some rows.
struct Tables {
  ParamTable table;
  std::vector<float> p, g;
  Tables() {
    table.add("big", {300, 700});
    table.add("bias", {37});
    table.add("lookup", {500, 96});
    table.mark_sparse_rows("lookup");
    p.resize(table.total());
    g.resize(table.total());
    Rng rng(11);
    for (float& x : p) x = static_cast<float>(rng.normal());
    for (float& x : g) x = static_cast<float>(rng.normal() * 0.1);
    const ParamEntry& lk = table.at("lookup");
    for (size_t r = 0; r < 500; r += 3) {  // rows never touched
      std::fill_n(g.begin() + static_cast<ptrdiff_t>(lk.offset + r * 96), 96, 0.0f);
    }
  }
};

// AdamW as written, value by value, tensor by tensor.
void reference_adamw(const Tables& s, std::vector<float>& p, std::vector<float>& m,
                     std::vector<float>& v, int t, double lr, const OptimizerConfig& c) {
  const double bc1 = 1 - std::pow(c.beta1, double(t)), bc2 = 1 - std::pow(c.beta2, double(t));
  const float b1 = float(c.beta1), b2 = float(c.beta2), step = float(lr / bc1);
  const float inv_sqrt_bc2 = float(1 / std::sqrt(bc2)), eps = float(c.eps);
  for (const ParamEntry& e : s.table.entries()) {
    const float decay = float(1 - lr * (e.shape.size() >= 2 ? c.weight_decay : 0.0));
    const size_t cols = e.sparse_rows ? size_t(e.shape[1]) : e.numel;
    for (size_t r = 0; r < e.numel / cols; ++r) {
      const size_t o = e.offset + r * cols;
      bool touched = !e.sparse_rows;
      for (size_t i = 0; i < cols && !touched; ++i) touched = s.g[o + i] != 0.0f;
      if (!touched) continue;
      for (size_t i = o; i < o + cols; ++i) {
        m[i] = b1 * m[i] + (1 - b1) * s.g[i];
        v[i] = b2 * v[i] + (1 - b2) * s.g[i] * s.g[i];
        p[i] = p[i] * decay - step * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
      }
    }
  }
}

TEST(Optimizer, PiecesGiveTheBitsOfOneLoopPerValue) {
  Tables s;
  OptimizerConfig cfg;
  cfg.weight_decay = 0.1;
  std::vector<float> ref = s.p, m(s.p.size(), 0.0f), v(s.p.size(), 0.0f);
  for (int threads : {1, 2, 3}) {
    ThreadLimit limit(threads);
    std::vector<float> p = s.p;
    Optimizer<float> opt(s.table, cfg);
    ref = s.p, std::fill(m.begin(), m.end(), 0.0f), std::fill(v.begin(), v.end(), 0.0f);
    for (int t = 1; t <= 3; ++t) {
      opt.step(p.data(), s.g.data(), 1e-2);
      reference_adamw(s, ref, m, v, t, 1e-2, cfg);
    }
    ASSERT_EQ(p, ref) << threads << " threads";
  }
  // The untouched rows of the lookup table did not move.
  const ParamEntry& lk = s.table.at("lookup");
  EXPECT_EQ(ref[lk.offset], s.p[lk.offset]);
  EXPECT_NE(ref[lk.offset + 96], s.p[lk.offset + 96]);
}

TEST(Optimizer, GradientNormIsExactAndTheSameForAnyThreadCount) {
  Tables s;
  long double ss = 0;
  for (const ParamEntry& e : s.table.entries()) {
    for (size_t i = e.offset; i < e.offset + e.numel; ++i) ss += (long double)s.g[i] * s.g[i];
  }
  const double want = std::sqrt(double(ss));
  std::vector<float> first;
  double first_norm = 0;
  for (int threads : {1, 2, 3}) {
    ThreadLimit limit(threads);
    std::vector<float> g = s.g;
    const double norm = clip_grad_norm(s.table, g.data(), 1.0);
    EXPECT_NEAR(norm, want, 1e-12 * want);
    EXPECT_GT(norm, 1.0);  // so the gradient was scaled
    if (first.empty()) first = g, first_norm = norm;
    EXPECT_EQ(norm, first_norm) << threads << " threads";
    EXPECT_EQ(g, first) << threads << " threads";
  }
  EXPECT_NEAR(first[0], s.g[0] / want, 1e-6);
}

}  // namespace
}  // namespace aha::policy
