// Keep sampling mask in the LM head: logprobs renormalised over a kept id set equal a direct
// log-softmax over those logits, and the backward matches central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "aha/policy/layers.h"

namespace aha::policy {
namespace {

struct Head {
  int n = 4, dim = 5, vocab = 9;
  std::vector<double> h, w;
  std::vector<int32_t> targets{2, 7, -1, 0};
  std::vector<std::vector<int32_t>> sets{{1, 2, 5}, {}, {}, {0, 3, 4, 8}};
  KeptSets kept;
  double temperature = 0.7;

  Head() {
    std::mt19937 gen(5);
    std::normal_distribution<double> nd(0, 0.8);
    h.resize(n * dim);
    w.resize(vocab * dim);
    for (auto& x : h) x = nd(gen);
    for (auto& x : w) x = nd(gen);
    for (auto& s : sets) kept.push_back(s.empty() ? nullptr : &s);
  }
  // sum_t coef[t] * logprob[t]
  double objective(const std::vector<double>& coef) const {
    std::vector<double> lp(n), lse(n);
    logprob_forward(h.data(), w.data(), targets.data(), lp.data(), static_cast<double*>(nullptr),
                    lse.data(), n, dim, vocab, temperature, &kept);
    double s = 0;
    for (int t = 0; t < n; ++t) {
      if (targets[t] >= 0) s += coef[t] * lp[t];
    }
    return s;
  }
};

TEST(KeptMask, LogprobIsTheRenormalisedSoftmax) {
  Head m;
  std::vector<double> lp(m.n), lse(m.n);
  logprob_forward(m.h.data(), m.w.data(), m.targets.data(), lp.data(), static_cast<double*>(nullptr),
                  lse.data(), m.n, m.dim, m.vocab, m.temperature, &m.kept);
  for (int t = 0; t < m.n; ++t) {
    if (m.targets[t] < 0) continue;
    std::vector<double> z(m.vocab);
    for (int v = 0; v < m.vocab; ++v) {
      double s = 0;
      for (int k = 0; k < m.dim; ++k) s += m.h[t * m.dim + k] * m.w[v * m.dim + k];
      z[v] = s / m.temperature;
    }
    double denom = 0;
    if (m.sets[t].empty()) {
      for (double x : z) denom += std::exp(x);
    } else {
      for (int32_t id : m.sets[t]) denom += std::exp(z[id]);
    }
    EXPECT_NEAR(lp[t], z[m.targets[t]] - std::log(denom), 1e-12) << "token " << t;
  }
  // A kept set renormalises: its logprob is above the full-vocabulary one.
  std::vector<double> full(m.n);
  logprob_forward(m.h.data(), m.w.data(), m.targets.data(), full.data(), static_cast<double*>(nullptr),
                  lse.data(), m.n, m.dim, m.vocab, m.temperature, nullptr);
  EXPECT_GT(lp[0], full[0]);
  EXPECT_EQ(lp[1], full[1]);
}

TEST(KeptMask, BackwardMatchesFiniteDifferences) {
  Head m;
  const std::vector<double> coef{0.7, -1.3, 0.4, 2.1};
  std::vector<double> lp(m.n), lse(m.n);
  logprob_forward(m.h.data(), m.w.data(), m.targets.data(), lp.data(), static_cast<double*>(nullptr),
                  lse.data(), m.n, m.dim, m.vocab, m.temperature, &m.kept);
  std::vector<double> dlp(m.n), dh(m.h.size(), 0.0), dw(m.w.size(), 0.0);
  for (int t = 0; t < m.n; ++t) dlp[t] = coef[t];
  logprob_backward(dlp.data(), static_cast<const double*>(nullptr), m.h.data(), m.w.data(), m.targets.data(), lse.data(), dh.data(),
                   dw.data(), m.n, m.dim, m.vocab, m.temperature, &m.kept);
  const double eps = 1e-6;
  auto check = [&](std::vector<double>& x, const std::vector<double>& grad, const char* what) {
    for (size_t i = 0; i < x.size(); ++i) {
      const double keep = x[i];
      x[i] = keep + eps;
      const double up = m.objective(coef);
      x[i] = keep - eps;
      const double down = m.objective(coef);
      x[i] = keep;
      EXPECT_NEAR(grad[i], (up - down) / (2 * eps), 1e-7) << what << "[" << i << "]";
    }
  };
  check(m.h, dh, "dh");
  check(m.w, dw, "dw");
  // Only masked tokens (0 and 3) pulling: ids in neither kept set get no gradient at all.
  const std::vector<double> masked_only{0.7, 0.0, 0.0, 2.1};
  std::fill(dw.begin(), dw.end(), 0.0);
  std::fill(dh.begin(), dh.end(), 0.0);
  logprob_backward(masked_only.data(), static_cast<const double*>(nullptr), m.h.data(), m.w.data(), m.targets.data(), lse.data(),
                   dh.data(), dw.data(), m.n, m.dim, m.vocab, m.temperature, &m.kept);
  for (int k = 0; k < m.dim; ++k) {
    EXPECT_EQ(dw[6 * m.dim + k], 0.0);
    EXPECT_EQ(dw[7 * m.dim + k], 0.0);
    EXPECT_NE(dw[8 * m.dim + k], 0.0);
  }
}

}  // namespace
}  // namespace aha::policy
