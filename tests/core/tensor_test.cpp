// The GEMM helpers against a naive reference; the row-stable GEMM is batch invariant.
#include "aha/core/tensor.h"

#include <gtest/gtest.h>

#include "aha/core/rng.h"
#include "aha/core/threading.h"

namespace aha {
namespace {

std::vector<float> randv(size_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal());
  return v;
}

TEST(Tensor, GemmShapesMatchNaive) {
  const int64_t n = 37, in = 45, out = 300;
  auto x = randv(n * in, 1), w = randv(out * in, 2), b = randv(out, 3), dy = randv(n * out, 4);
  std::vector<float> y(n * out), dx(n * in, 0.f), dw(out * in, 0.f), db(out, 0.f);
  gemm_xwt(x.data(), w.data(), b.data(), y.data(), n, in, out);
  gemm_dyw(dy.data(), w.data(), dx.data(), n, in, out);
  gemm_dytx(dy.data(), x.data(), dw.data(), db.data(), n, in, out);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < out; ++j) {
      double s = b[j];
      for (int64_t k = 0; k < in; ++k) s += double(x[i * in + k]) * w[j * in + k];
      ASSERT_NEAR(y[i * out + j], s, 1e-4) << i << "," << j;
    }
  }
  for (int64_t j = 0; j < out; j += 7) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += dy[i * out + j];
    EXPECT_NEAR(db[j], s, 1e-4);
    for (int64_t k = 0; k < in; k += 5) {
      double g = 0;
      for (int64_t i = 0; i < n; ++i) g += double(dy[i * out + j]) * x[i * in + k];
      EXPECT_NEAR(dw[j * in + k], g, 1e-3);
    }
  }
  for (int64_t i = 0; i < n; i += 3) {
    for (int64_t k = 0; k < in; ++k) {
      double g = 0;
      for (int64_t j = 0; j < out; ++j) g += double(dy[i * out + j]) * w[j * in + k];
      EXPECT_NEAR(dx[i * in + k], g, 1e-3);
    }
  }
  // Few rows take the column-split path.
  std::vector<float> y2(3 * out);
  gemm_xwt(x.data(), w.data(), b.data(), y2.data(), 3, in, out);
  for (int64_t j = 0; j < 3 * out; ++j) EXPECT_NEAR(y2[j], y[j], 1e-5);
}

TEST(Tensor, RowStableGemmIsBatchAndThreadInvariant) {
  const int64_t in = 83, out = 70;
  auto x = randv(64 * in, 5), w = randv(out * in, 6);
  std::vector<float> full(64 * out);
  gemm_xwt_rowstable(x.data(), w.data(), static_cast<const float*>(nullptr), full.data(), 64, in,
                     out);
  for (int64_t j = 0; j < out; ++j) {
    double s = 0;
    for (int64_t k = 0; k < in; ++k) s += double(x[5 * in + k]) * w[j * in + k];
    EXPECT_NEAR(full[5 * out + j], s, 1e-4);
  }
  for (int64_t rows : {1, 2, 5, 17}) {
    for (int threads : {1, 2}) {
      ThreadLimit limit(threads);
      std::vector<float> part(rows * out);
      // Rows 9.. of the full batch, computed in a batch of `rows`.
      gemm_xwt_rowstable(x.data() + 9 * in, w.data(), static_cast<const float*>(nullptr),
                         part.data(), rows, in, out);
      for (int64_t i = 0; i < rows * out; ++i) ASSERT_EQ(part[i], full[9 * out + i]) << rows;
    }
  }
  EXPECT_EQ(dot_stable(x.data() + 9 * in, w.data() + 3 * in, in), full[9 * out + 3]);
}

}  // namespace
}  // namespace aha
