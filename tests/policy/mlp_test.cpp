// The SwiGLU MLP's gate and up projections as one product (mlp.cpp, gate_up): each output keeps
// the bits it has from a product of its own, on every kernel, and a layer whose two projections
// cannot share a product (an adapter on one of them) gives the same values through two.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "aha/core/gemm_bf16.h"
#include "aha/core/tensor.h"
#include "aha/policy/lora.h"
#include "aha/policy/mlp.h"

namespace aha::policy {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// The gate's and the up projection's outputs, each from a product of its own through the kernel
// the MLP uses (rowstable: the decode path's).
void separate_products(const MlpP& p, const float* P, const float* x, int64_t n, bool rowstable,
                       std::vector<float>& g, std::vector<float>& u) {
  const int d = p.gate_proj.n_in, inter = p.gate_proj.n_out;
  const float* none = nullptr;
  g.assign(size_t(n * inter), 0.0f);
  u.assign(size_t(n * inter), 0.0f);
  if (rowstable) {
    gemm_xwt_rowstable(x, P + p.gate_proj.w, none, g.data(), n, d, inter);
    gemm_xwt_rowstable(x, P + p.up_proj.w, none, u.data(), n, d, inter);
  } else {
    gemm_xwt(x, P + p.gate_proj.w, none, g.data(), n, d, inter);
    gemm_xwt(x, P + p.up_proj.w, none, u.data(), n, d, inter);
  }
}

TEST(Mlp, GateAndUpAsOneProductKeepEachOutputsBits) {
  const int d = 96, inter = 80;
  ParamTable t;
  const MlpP p = add_mlp(t, "mlp", d, inter);
  ASSERT_EQ(p.up_proj.w, p.gate_proj.w + size_t(inter) * d);  // back to back: one product
  const std::vector<float> P = random_floats(t.total(), 1, 0.1f);
  for (MatmulPrecision prec : {MatmulPrecision::fp32, MatmulPrecision::bf16}) {
    MatmulPrecisionScope scope(prec);
    for (bool rowstable : {false, true}) {
      for (int64_t n : {1, 7, 300}) {
        const std::vector<float> x = random_floats(size_t(n * d), 2, 1.0f);
        std::vector<float> y(size_t(n * d)), g, u;
        MlpActs<float> a;
        mlp_forward(p, P.data(), x.data(), y.data(), n, a, false, rowstable);
        separate_products(p, P.data(), x.data(), n, rowstable, g, u);
        ASSERT_EQ(a.gu.size(), size_t(2 * n * inter));
        for (int64_t r = 0; r < n; ++r) {
          for (int i = 0; i < inter; ++i) {
            // Each row holds [g | u] when the two ran as one product.
            ASSERT_EQ(a.gu[r * 2 * inter + i], g[r * inter + i])
                << matmul_precision_name(prec) << " rowstable " << rowstable << " n " << n;
            ASSERT_EQ(a.gu[r * 2 * inter + inter + i], u[r * inter + i]);
          }
        }
      }
    }
  }
}

// An adapter on the gate keeps two products; the layer's output is the base MLP's plus the
// adapter's part, and with the adapter's B at zero (as PEFT initialises it) exactly the base's.
TEST(Mlp, AnAdapterOnOneProjectionKeepsTwoProducts) {
  const int d = 64, inter = 48;
  const int64_t n = 33;
  LoraConfig l;
  l.rank = 4;
  l.alpha = 8;
  l.target_modules = {"gate_proj"};
  ParamTable plain_t, lora_t;
  const MlpP plain = add_mlp(plain_t, "mlp", d, inter);
  lora_t.set_lora(&l, plain_t.total());
  const MlpP adapted = add_mlp(lora_t, "mlp", d, inter);
  ASSERT_NE(adapted.gate_proj.lora_a, kNoParam);
  std::vector<float> P0 = random_floats(plain_t.total(), 3, 0.1f), P1(lora_t.total(), 0.0f);
  std::copy(P0.begin(), P0.end(), P1.begin());  // the base tensors come first, then the adapters
  const std::vector<float> x = random_floats(size_t(n * d), 4, 1.0f);
  for (MatmulPrecision prec : {MatmulPrecision::fp32, MatmulPrecision::bf16}) {
    MatmulPrecisionScope scope(prec);
    std::vector<float> y0(size_t(n * d)), y1(size_t(n * d));
    MlpActs<float> a0, a1;
    mlp_forward(plain, P0.data(), x.data(), y0.data(), n, a0);
    mlp_forward(adapted, P1.data(), x.data(), y1.data(), n, a1);
    EXPECT_EQ(y0, y1) << matmul_precision_name(prec);
    EXPECT_EQ(a0.a, a1.a);
  }
}

}  // namespace
}  // namespace aha::policy
