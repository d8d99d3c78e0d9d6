// The float training attention's register-tile kernels (attention_fused.cpp) against the general
// path in double (one BLAS call per product, a separate softmax), over packed sequences whose
// lengths fall on and off every tile and block edge, with and without grouped keys.
#include "../../policy/src/attention_fused.h"

#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <cmath>
#include <limits>
#include <vector>

#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "aha/policy/attention.h"

namespace aha::policy {
namespace {

struct Case {
  int heads, kv_heads, qk, v;
};

std::vector<double> normal(size_t n, uint64_t seed, double sd) {
  Rng r(seed);
  std::vector<double> x(n);
  for (double& v : x) v = sd * r.normal();
  return x;
}

std::vector<float> to_float(const std::vector<double>& x) { return {x.begin(), x.end()}; }

struct Result {
  std::vector<float> out, lse, dq, dk, dv;
};

// Outputs start as NaN: the kernels must write every value (dk and dv are not accumulated into).
Result run_float(const std::vector<float>& q, const std::vector<float>& k,
                 const std::vector<float>& v, const std::vector<float>& dout,
                 const std::vector<int64_t>& starts, const AttnShape& s) {
  const int64_t n = starts.back();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Result r{std::vector<float>(n * s.n_heads * s.v_dim, nan), std::vector<float>(s.n_heads * n, nan),
           std::vector<float>(q.size(), nan), std::vector<float>(k.size(), nan),
           std::vector<float>(v.size(), nan)};
  attention_forward(q.data(), k.data(), v.data(), r.out.data(), r.lse.data(), starts, s);
  attention_backward(dout.data(), q.data(), k.data(), v.data(), r.out.data(), r.lse.data(),
                     r.dq.data(), r.dk.data(), r.dv.data(), starts, s);
  return r;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << " " << i;
    worst = std::max(worst, std::abs(got[i] - want[i]) / (1.0 + std::abs(want[i])));
  }
  EXPECT_LT(worst, tol) << what;
}

TEST(AttentionFused, MatchesTheGeneralPathInDouble) {
  // Lengths around the 8-row tiles, the 16-key lanes and the 64-row query blocks.
  const std::vector<int64_t> lens = {1, 7, 8, 17, 64, 65, 130, 203};
  std::vector<int64_t> starts = {0};
  for (int64_t l : lens) starts.push_back(starts.back() + l);
  const int64_t n = starts.back();
  // DeepSeek-V3's widths (192 / 128) and one of 80 (48 + 32 columns a tile) among them.
  for (const Case& c : {Case{4, 2, 48, 32}, Case{2, 2, 16, 16}, Case{3, 1, 32, 64},
                        Case{2, 1, 192, 128}, Case{2, 2, 80, 16}}) {
    SCOPED_TRACE(testing::Message()
                 << c.heads << "/" << c.kv_heads << " qk " << c.qk << " v " << c.v);
    AttnShape s{c.heads, c.kv_heads, c.qk, c.v, 1.0 / std::sqrt(double(c.qk))};
    ASSERT_TRUE(fused_attention_fits(s));
    // Sharp enough that the softmax's max matters (scores of a few units).
    const auto q = normal(n * c.heads * c.qk, 1, 1.5), k = normal(n * c.kv_heads * c.qk, 2, 1.5);
    const auto v = normal(n * c.kv_heads * c.v, 3, 1.0), dout = normal(n * c.heads * c.v, 4, 1.0);
    std::vector<double> out(n * c.heads * c.v), lse(c.heads * n), dq(q.size()), dk(k.size()),
        dv(v.size());
    attention_forward(q.data(), k.data(), v.data(), out.data(), lse.data(), starts, s);
    attention_backward(dout.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), dq.data(),
                       dk.data(), dv.data(), starts, s);
    const Result f = run_float(to_float(q), to_float(k), to_float(v), to_float(dout), starts, s);
    expect_close(f.out, out, 2e-5, "out");
    expect_close(f.lse, lse, 2e-5, "lse");
    expect_close(f.dq, dq, 5e-5, "dq");
    expect_close(f.dk, dk, 5e-5, "dk");
    expect_close(f.dv, dv, 5e-5, "dv");
  }
}

// The sums have one order whatever the thread count: the same bits on one thread and on all,
// under either precision (the bf16 gradient products run whole on their task's thread).
TEST(AttentionFused, SameBitsOnAnyThreadCount) {
  const std::vector<int64_t> starts = {0, 90, 100, 229};
  const int64_t n = starts.back();
  AttnShape s{4, 2, 48, 32, 0.2};
  const auto q = to_float(normal(n * 4 * 48, 5, 1.0)), k = to_float(normal(n * 2 * 48, 6, 1.0));
  const auto v = to_float(normal(n * 2 * 32, 7, 1.0)), dout = to_float(normal(n * 4 * 32, 8, 1.0));
  for (const MatmulPrecision p : {MatmulPrecision::fp32, MatmulPrecision::bf16}) {
    SCOPED_TRACE(matmul_precision_name(p));
    MatmulPrecisionScope precision(p);
    const Result all = run_float(q, k, v, dout, starts, s);
    Result one;
    {
      tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
      one = run_float(q, k, v, dout, starts, s);
    }
    EXPECT_EQ(all.out, one.out);
    EXPECT_EQ(all.lse, one.lse);
    EXPECT_EQ(all.dq, one.dq);
    EXPECT_EQ(all.dk, one.dk);
    EXPECT_EQ(all.dv, one.dv);
  }
}

// Under bf16 the gradient products round their operands to bf16: within bf16's rounding of the
// double reference (scaled by each tensor's largest value), and not the fp32 values (the path
// is taken). The forward stays fp32: the sampler's logprobs are the trainer's.
TEST(AttentionFused, Bf16GradientsAreWithinBf16Rounding) {
  const std::vector<int64_t> starts = {0, 37, 137, 300};
  const int64_t n = starts.back();
  AttnShape s{4, 2, 48, 32, 1.0 / std::sqrt(48.0)};
  const auto q = normal(n * 4 * 48, 11, 1.5), k = normal(n * 2 * 48, 12, 1.5);
  const auto v = normal(n * 2 * 32, 13, 1.0), dout = normal(n * 4 * 32, 14, 1.0);
  std::vector<double> out(n * 4 * 32), lse(4 * n), dq(q.size()), dk(k.size()), dv(v.size());
  attention_forward(q.data(), k.data(), v.data(), out.data(), lse.data(), starts, s);
  attention_backward(dout.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), dq.data(),
                     dk.data(), dv.data(), starts, s);
  const Result fp32 = run_float(to_float(q), to_float(k), to_float(v), to_float(dout), starts, s);
  Result bf;
  {
    MatmulPrecisionScope scope(MatmulPrecision::bf16);
    bf = run_float(to_float(q), to_float(k), to_float(v), to_float(dout), starts, s);
  }
  EXPECT_EQ(bf.out, fp32.out);
  EXPECT_EQ(bf.lse, fp32.lse);
  const auto check = [](const std::vector<float>& got, const std::vector<float>& exact32,
                        const std::vector<double>& want, const char* what) {
    double peak = 0, worst = 0, moved = 0;
    for (double w : want) peak = std::max(peak, std::abs(w));
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << what << " " << i;
      worst = std::max(worst, std::abs(got[i] - want[i]));
      moved = std::max(moved, double(std::abs(got[i] - exact32[i])));
    }
    EXPECT_LT(worst, 2e-2 * peak) << what;
    EXPECT_GT(moved, 1e-5 * peak) << what << ": the bf16 products were not used";
  };
  check(bf.dq, fp32.dq, dq, "dq");
  check(bf.dk, fp32.dk, dk, "dk");
  check(bf.dv, fp32.dv, dv, "dv");
}

// Windows, key selections and widths off the 16 lanes stay on the general path.
TEST(AttentionFused, TakesOnlyPlainCausalShapesOnTheLanes) {
  EXPECT_FALSE(fused_attention_fits(AttnShape{2, 2, 12, 16, 1.0}));
  EXPECT_FALSE(fused_attention_fits(AttnShape{2, 2, 16, 8, 1.0}));
  AttnShape w{2, 2, 16, 16, 1.0};
  w.window = 4;
  EXPECT_FALSE(fused_attention_fits(w));
  std::vector<std::vector<int32_t>> sel;
  AttnShape sparse{2, 2, 16, 16, 1.0};
  sparse.selected = &sel;
  EXPECT_FALSE(fused_attention_fits(sparse));
  EXPECT_TRUE(fused_attention_fits(AttnShape{8, 1, 192, 128, 1.0}));
}

}  // namespace
}  // namespace aha::policy
