// The LM head's forward takes its logits from the product the sampler and the head's backward
// use (gemm_xwt), under either matmul precision: the trainer's logprob is then the sampler's, and
// the backward's softmax, built from its own logits and the forward's lse, sums to one.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "aha/core/tensor.h"
#include "aha/policy/layers.h"

namespace aha::policy {
namespace {

struct Head {
  // 300 rows: more than one of the backward's 256-row chunks.
  int64_t n = 300;
  int dim = 96, vocab = 1000;
  std::vector<float> h, w;
  std::vector<int32_t> targets;
  Head() {
    Rng rng(11);
    for (int64_t i = 0; i < n * dim; ++i) h.push_back(static_cast<float>(rng.normal()));
    for (int64_t i = 0; i < int64_t{vocab} * dim; ++i) {
      w.push_back(static_cast<float>(0.3 * rng.normal()));
    }
    for (int64_t t = 0; t < n; ++t) targets.push_back(static_cast<int32_t>(rng.below(vocab)));
  }
};

// log softmax(z / temperature)[y] in double, from the logits the backward computes.
double reference_logprob(const std::vector<float>& logits, int64_t t, int vocab, int32_t y,
                         double temperature) {
  const float* z = logits.data() + t * vocab;
  double mx = -INFINITY, sum = 0;
  for (int j = 0; j < vocab; ++j) mx = std::max(mx, z[j] / temperature);
  for (int j = 0; j < vocab; ++j) sum += std::exp(z[j] / temperature - mx);
  return z[y] / temperature - mx - std::log(sum);
}

void expect_forward_on_the_shared_logits(MatmulPrecision precision) {
  const MatmulPrecisionScope scope(precision);
  Head m;
  const double temperature = 0.7;
  std::vector<float> lp(m.n), lse(m.n), logits(m.n * m.vocab);
  logprob_forward(m.h.data(), m.w.data(), m.targets.data(), lp.data(), static_cast<float*>(nullptr),
                  lse.data(), m.n, m.dim, m.vocab, temperature, nullptr);
  gemm_xwt(m.h.data(), m.w.data(), static_cast<const float*>(nullptr), logits.data(), m.n, m.dim,
           m.vocab);
  double worst = 0;
  for (int64_t t = 0; t < m.n; ++t) {
    const double ref = reference_logprob(logits, t, m.vocab, m.targets[t], temperature);
    worst = std::max(worst, std::abs(lp[t] - ref));
  }
  // fp32 sums against double ones; a bf16 product against an fp32 one differs by ~1e-2 here.
  EXPECT_LT(worst, 2e-5) << "max |logprob - log softmax(gemm_xwt logits)|";
}

TEST(LmHead, ForwardTakesTheSharedProductInFp32) {
  expect_forward_on_the_shared_logits(MatmulPrecision::fp32);
}

TEST(LmHead, ForwardTakesTheSharedProductInBf16) {
  expect_forward_on_the_shared_logits(MatmulPrecision::bf16);
}

// The backward builds its softmax from its own logits (gemm_xwt) and the forward's lse: under
// bf16 those weights sum to one only if the forward's lse came from the same product.
TEST(LmHead, BackwardSoftmaxFromTheForwardsLseSumsToOneUnderBf16) {
  const MatmulPrecisionScope scope(MatmulPrecision::bf16);
  Head m;
  std::vector<float> lp(m.n), lse(m.n), logits(m.n * m.vocab);
  logprob_forward(m.h.data(), m.w.data(), m.targets.data(), lp.data(), static_cast<float*>(nullptr),
                  lse.data(), m.n, m.dim, m.vocab, 1.0, nullptr);
  gemm_xwt(m.h.data(), m.w.data(), static_cast<const float*>(nullptr), logits.data(), m.n, m.dim,
           m.vocab);
  double worst = 0;
  for (int64_t t = 0; t < m.n; ++t) {
    double sum_p = 0;
    for (int j = 0; j < m.vocab; ++j) sum_p += std::exp(double(logits[t * m.vocab + j]) - lse[t]);
    worst = std::max(worst, std::abs(sum_p - 1.0));
  }
  EXPECT_LT(worst, 1e-5) << "max |sum of the backward's softmax - 1|";
}

}  // namespace
}  // namespace aha::policy
