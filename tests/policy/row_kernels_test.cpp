// Row kernels that prefill and batched decode run over many rows at once: RMSNorm (rows summed
// eight at a time) and the attention softmax (its max taken 16 lanes at a time). Each row's
// result must be the bits of its serial definition, whatever rows share the call.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "aha/core/rng.h"
#include "aha/policy/layers.h"
#include "../../policy/src/attention_impl.h"

namespace aha::policy {
namespace {

std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * static_cast<float>(rng.normal());
  return v;
}

TEST(RowKernels, RmsnormRowsAreTheirSerialDefinition) {
  // 21 rows: two groups of eight and five left over; rows every 300 values (a strided input).
  const int64_t n = 21, stride = 300;
  const int dim = 257;
  const double eps = 1e-6;
  const std::vector<float> x = random_floats(n * stride, 1, 3.0f), w = random_floats(dim, 2);
  std::vector<float> y(n * dim), rstd(n);
  rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), n, dim, eps, stride);
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x.data() + t * stride;
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float r = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    ASSERT_EQ(rstd[t], r) << "row " << t;
    for (int i = 0; i < dim; ++i) ASSERT_EQ(y[t * dim + i], xr[i] * r * w[i]) << "row " << t;
    // The row alone gives the same bits.
    std::vector<float> y1(dim), r1(1);
    rmsnorm_forward(xr, w.data(), y1.data(), r1.data(), 1, dim, eps, stride);
    ASSERT_EQ(r1[0], rstd[t]);
    for (int i = 0; i < dim; ++i) ASSERT_EQ(y1[i], y[t * dim + i]);
  }
}

TEST(RowKernels, SoftmaxTakesTheMaxOfTheWholeRow) {
  // 37 keys: two 16-lane blocks and a tail of 5. Row 0 peaks in the tail, row 1 in the first
  // block, row 2 in the second; row 3 has keys at -inf, which weigh at most e^-87 of the peak
  // (the kernel's exp clamps its argument there). The peaks are large enough that a max missing
  // them overflows the exponential.
  const int64_t rows = 4, n = 37;
  const float scale = 0.7f;
  std::vector<float> s = random_floats(rows * n, 3);
  s[0 * n + 35] = 200.0f;
  s[1 * n + 3] = 200.0f;
  s[2 * n + 20] = 200.0f;
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t j : {0, 17, 36}) s[3 * n + j] = -inf;
  const std::vector<float> in = s;
  scaled_softmax_rows(s.data(), rows, n, scale);
  for (int64_t i = 0; i < rows; ++i) {
    double mx = -inf, sum = 0;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(in[i * n + j] * scale));
    for (int64_t j = 0; j < n; ++j) sum += std::exp(double(in[i * n + j] * scale) - mx);
    for (int64_t j = 0; j < n; ++j) {
      const double want = std::exp(double(in[i * n + j] * scale) - mx) / sum;
      ASSERT_NEAR(s[i * n + j], want, 2e-6 * want + 1e-30) << "row " << i << " key " << j;
    }
  }
}

TEST(RowKernels, SoftmaxOfEveryLengthAndTail) {
  // Lengths 1-50: no whole block, one or more blocks, and each of the 15 tail lengths, with the
  // peak in the tail; the values beyond the row stay as they were.
  const float scale = 0.3f;
  for (int64_t n = 1; n <= 50; ++n) {
    std::vector<float> s = random_floats(n + 16, 7 + n, 4.0f);
    s[n - 1] = 60.0f;
    const std::vector<float> in = s;
    scaled_softmax_rows(s.data(), 1, n, scale);
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(in[j] * scale));
    for (int64_t j = 0; j < n; ++j) sum += std::exp(double(in[j] * scale) - mx);
    for (int64_t j = 0; j < n; ++j) {
      const double want = std::exp(double(in[j] * scale) - mx) / sum;
      ASSERT_NEAR(s[j], want, 2e-6 * want + 1e-30) << "length " << n << " key " << j;
    }
    for (int64_t j = n; j < n + 16; ++j) ASSERT_EQ(s[j], in[j]) << "length " << n;
  }
}

TEST(RowKernels, SoftmaxOfCausalRowsIsEachRowAlone) {
  // 37 rows (two groups of 16 and 5) ld values apart, row i over its first n0 + i keys (a
  // prefill's causal rows) or all over n0 (step 0): each row has the bits of its own call, and
  // the values past its keys stay as they were.
  const float scale = 0.45f;
  const int64_t rows = 37, ld = 80;
  for (int64_t step : {0, 1}) {
    for (int64_t n0 : {1, 16, 29}) {
      std::vector<float> s = random_floats(rows * ld, 11 + n0, 5.0f);
      const std::vector<float> in = s;
      scaled_softmax_rows(s.data(), rows, ld, n0, step, scale);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t n = n0 + i * step;
        std::vector<float> alone(in.begin() + i * ld, in.begin() + i * ld + n);
        scaled_softmax_rows(alone.data(), 1, n, scale);
        for (int64_t j = 0; j < ld; ++j) {
          ASSERT_EQ(s[i * ld + j], j < n ? alone[j] : in[i * ld + j])
              << "step " << step << " n0 " << n0 << " row " << i << " key " << j;
        }
      }
    }
  }
}

}  // namespace
}  // namespace aha::policy
