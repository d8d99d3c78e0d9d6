// The GEMM helpers against a naive reference; the row-stable GEMM is batch invariant.
#include "aha/core/tensor.h"

#include <gtest/gtest.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aha/core/aligned.h"
#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/core/threading.h"
#include "aha/core/weight_cache.h"

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

// Shapes whose products split into a 2 x 2 grid of tiles with ragged edges (rows and columns),
// and one whose weight gradient splits the tokens (few weights, many tokens): every op, bias and
// bias gradient included, matches the naive sums, and the bits do not depend on the thread count.
void check_tiled_gemms(int64_t n, int64_t in, int64_t out) {
  auto x = randv(n * in, 11), w = randv(out * in, 12), b = randv(out, 13), dy = randv(n * out, 14);
  struct Out {
    std::vector<float> y, dx, dw, db;
  };
  auto run = [&] {
    Out o{std::vector<float>(n * out), std::vector<float>(n * in, 0.5f),
          std::vector<float>(out * in, 0.25f), std::vector<float>(out, 1.0f)};
    gemm_xwt(x.data(), w.data(), b.data(), o.y.data(), n, in, out);
    gemm_dyw(dy.data(), w.data(), o.dx.data(), n, in, out);
    gemm_dytx(dy.data(), x.data(), o.dw.data(), o.db.data(), n, in, out);
    return o;
  };
  const Out all = run();
  for (int64_t i = 0; i < n; i += 7) {
    for (int64_t j = 0; j < out; ++j) {
      double s = b[j];
      for (int64_t k = 0; k < in; ++k) s += double(x[i * in + k]) * w[j * in + k];
      ASSERT_NEAR(all.y[i * out + j], s, 1e-3) << i << "," << j;
    }
    for (int64_t k = 0; k < in; ++k) {
      double g = 0.5;
      for (int64_t j = 0; j < out; ++j) g += double(dy[i * out + j]) * w[j * in + k];
      ASSERT_NEAR(all.dx[i * in + k], g, 1e-3) << i << "," << k;
    }
  }
  for (int64_t j = 0; j < out; ++j) {
    double s = 1.0;
    for (int64_t i = 0; i < n; ++i) s += dy[i * out + j];
    ASSERT_NEAR(all.db[j], s, 1e-3) << j;
    for (int64_t k = 0; k < in; k += 3) {
      double g = 0.25;
      for (int64_t i = 0; i < n; ++i) g += double(dy[i * out + j]) * x[i * in + k];
      ASSERT_NEAR(all.dw[j * in + k], g, 2e-3) << j << "," << k;
    }
  }
  for (int threads : {1, 3}) {
    ThreadLimit limit(threads);
    const Out o = run();
    EXPECT_EQ(o.y, all.y) << threads;
    EXPECT_EQ(o.dx, all.dx) << threads;
    EXPECT_EQ(o.dw, all.dw) << threads;
    EXPECT_EQ(o.db, all.db) << threads;
  }
}

TEST(Tensor, TiledGemmsMatchNaiveAndRepeatForAnyThreadCount) {
  check_tiled_gemms(150, 300, 170);  // 2 x 2 tiles for each op
  check_tiled_gemms(1000, 40, 50);   // dw from two parts of the tokens
}

// A product inside another loop's task (an expert of a MoE layer) is one BLAS call: the loop
// already feeds the cores. Its bits are the same for any thread count, and its values those of
// the tiled product at the top level.
TEST(Tensor, NestedGemmsRepeatForAnyThreadCount) {
  const int64_t n = 150, in = 300, out = 170, tasks = 3;
  auto x = randv(n * in, 21), w = randv(out * in, 22), dy = randv(n * out, 23);
  struct Out {
    std::vector<float> y, dx, dw;
  };
  auto one = [&](Out& o) {
    o = Out{std::vector<float>(n * out), std::vector<float>(n * in, 0.5f),
            std::vector<float>(out * in, 0.25f)};
    gemm_xwt(x.data(), w.data(), static_cast<const float*>(nullptr), o.y.data(), n, in, out);
    gemm_dyw(dy.data(), w.data(), o.dx.data(), n, in, out);
    gemm_dytx(dy.data(), x.data(), o.dw.data(), static_cast<float*>(nullptr), n, in, out);
  };
  auto nested = [&] {
    std::vector<Out> o(tasks);
    tbb::parallel_for(int64_t{0}, tasks, [&](int64_t t) { one(o[t]); });
    return o;
  };
  Out top;
  one(top);
  const std::vector<Out> all = nested();
  for (const Out& o : all) {
    EXPECT_EQ(o.y, all[0].y);
    for (size_t i = 0; i < o.y.size(); ++i) ASSERT_NEAR(o.y[i], top.y[i], 1e-4) << i;
    for (size_t i = 0; i < o.dx.size(); ++i) ASSERT_NEAR(o.dx[i], top.dx[i], 1e-4) << i;
    for (size_t i = 0; i < o.dw.size(); ++i) ASSERT_NEAR(o.dw[i], top.dw[i], 1e-3) << i;
  }
  for (int threads : {1, 2, 3}) {
    ThreadLimit limit(threads);
    const std::vector<Out> again = nested();
    for (int64_t t = 0; t < tasks; ++t) {
      EXPECT_EQ(again[t].y, all[t].y) << threads;
      EXPECT_EQ(again[t].dx, all[t].dx) << threads;
      EXPECT_EQ(again[t].dw, all[t].dw) << threads;
    }
  }
}

// On a CPU with AVX-512, aha runs OpenBLAS's AVX-512 kernels even where OpenBLAS itself (or an
// OPENBLAS_CORETYPE of the environment) would pick its AVX2 ones; the products above then
// already ran on them.
TEST(Tensor, OpenBlasRunsItsAvx512KernelsWhereTheCpuHasThem) {
  if (std::string(gemm_backend()) != "openblas") GTEST_SKIP() << "built without OpenBLAS";
  if (std::getenv("AHA_BLAS_CORE") != nullptr) GTEST_SKIP() << "AHA_BLAS_CORE chooses";
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  if (!avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const std::string core = gemm_blas_core();
  EXPECT_NE(core, "Haswell");
  EXPECT_NE(core, "Zen");
  EXPECT_NE(core, "Sandybridge");
}

// What gemm_xwt_rowstable promises for float: one in-order chain over k, fused where the build
// has FMA.
float chain_dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t k = 0; k < n; ++k) {
#if defined(__FMA__) || defined(__AVX512F__)
    s = std::fma(a[k], b[k], s);
#else
    s = s + a[k] * b[k];
#endif
  }
  return s;
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
  EXPECT_EQ(chain_dot(x.data() + 9 * in, w.data() + 3 * in, in), full[9 * out + 3]);
}

// Awkward sizes: odd and prime widths, column tails (out % 16 != 0), rows that fall in every
// tile shape (8, 4, 2 and 1 rows), a k wide enough (1500, 2000) that a task holds only part of
// the rows. Every output is exactly the in-order chain (then + b); each row alone, and in any
// sub-batch, on 1 or 2 threads, with a WeightCache or not, gives the same bits as in
// the batch of 64; values agree with a double-precision reference.
TEST(Tensor, RowStableGemmRowsAreBitwiseIndependentOfTheBatch) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1},      {15, 17},   {16, 16},
                                                           {33, 70},    {144, 65},  {257, 129},
                                                           {128, 2048}, {1500, 70}, {2000, 70}};
  for (auto [in, out] : shapes) {
    auto x = randv(64 * in, 7), w = randv(out * in, 8), b = randv(out, 9);
    std::vector<float> full(64 * out);
    gemm_xwt_rowstable(x.data(), w.data(), b.data(), full.data(), 64, in, out);
    for (int64_t i = 0; i < 64; ++i) {
      for (int64_t j = 0; j < out; ++j) {
        const float chain = chain_dot(x.data() + i * in, w.data() + j * in, in) + b[j];
        ASSERT_EQ(full[i * out + j], chain) << in << "x" << out << " at " << i << "," << j;
      }
    }
    for (int64_t i : {0, 5, 62, 63}) {
      for (int64_t j = 0; j < out; ++j) {
        double ref = b[j], mag = std::abs(b[j]);
        for (int64_t k = 0; k < in; ++k) {
          ref += double(x[i * in + k]) * w[j * in + k];
          mag += std::abs(double(x[i * in + k]) * w[j * in + k]);
        }
        ASSERT_NEAR(full[i * out + j], ref, 1e-5 * mag + 1e-6) << in << "x" << out;
      }
    }
    for (int threads : {1, 2}) {
      ThreadLimit limit(threads);
      for (bool frozen : {false, true}) {
        std::optional<WeightCache> scope;
        if (frozen) scope.emplace(w.data(), out * in);
        for (auto [first, rows] : std::vector<std::pair<int64_t, int64_t>>{
                 {0, 1}, {63, 1}, {5, 1}, {7, 2}, {9, 3}, {1, 5}, {30, 7}, {3, 13}, {0, 64}}) {
          std::vector<float> part(rows * out);
          gemm_xwt_rowstable(x.data() + first * in, w.data(), b.data(), part.data(), rows, in,
                             out);
          for (int64_t e = 0; e < rows * out; ++e) {
            ASSERT_EQ(part[e], full[first * out + e])
                << in << "x" << out << " rows " << rows << " frozen " << frozen;
          }
        }
        // A weight that starts inside the scope's range: its last rows alone.
        const int64_t tail = std::min<int64_t>(out, 3);
        std::vector<float> last(2 * tail);
        gemm_xwt_rowstable(x.data() + 7 * in, w.data() + (out - tail) * in, b.data() + out - tail,
                           last.data(), 2, in, tail);
        for (int64_t r = 0; r < 2; ++r) {
          for (int64_t c = 0; c < tail; ++c) {
            ASSERT_EQ(last[r * tail + c], full[(7 + r) * out + out - tail + c]) << in;
          }
        }
      }
    }
  }
}

// Panels packed once, then products over any prefix of their rows into rows ldy apart (attention's
// scores, each query tile over its causal keys): every output is the in-order chain, the values
// past `out` and between the rows are left as they were.
TEST(Tensor, PackedLanesProductsOverAPrefixAreTheChains) {
  for (auto [in, total] : std::vector<std::pair<int64_t, int64_t>>{{48, 256}, {17, 37}, {5, 16}}) {
    auto x = randv(19 * in, 21), w = randv(total * in, 22);
    std::vector<float> wp(lanes_panel_floats(in, total));
    pack_lanes_panels(w.data(), in, total, wp.data());
    for (int64_t out : {int64_t{1}, int64_t{16}, total / 2 + 1, total}) {
      for (int64_t rows : {1, 3, 8, 19}) {
        const int64_t ldy = total + 5;
        std::vector<float> y(rows * ldy, -7.0f);
        gemm_xwt_lanes_packed(x.data(), in, wp.data(), y.data(), rows, in, out, ldy);
        for (int64_t i = 0; i < rows; ++i) {
          for (int64_t j = 0; j < ldy; ++j) {
            const float want =
                j < out ? chain_dot(x.data() + i * in, w.data() + j * in, in) : -7.0f;
            ASSERT_EQ(y[i * ldy + j], want)
                << in << " " << out << " " << rows << " " << i << "," << j;
          }
        }
      }
    }
  }
}

// A WeightCache covers its own range only, and forgets a weight when no live scope covers it:
// another model's weights changing beside it (an asynchronous sampler and the trainer) and a
// weight changed between two scopes while a third lives are both seen.
TEST(Tensor, WeightCacheKeepsOnlyItsRangeAndForgetsItWithTheScope) {
  const int64_t in = 40, out = 35, n = 3;
  auto x = randv(n * in, 1), w = randv(out * in, 2), other = randv(out * in, 3);
  const float* none = nullptr;
  auto expect_chain = [&](const std::vector<float>& y) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < out; ++j) {
        ASSERT_EQ(y[i * out + j], chain_dot(x.data() + i * in, w.data() + j * in, in));
      }
    }
  };
  std::vector<float> y(n * out);
  const WeightCache beside(other.data(), out * in);  // lives through the whole test
  gemm_xwt_rowstable(x.data(), w.data(), none, y.data(), n, in, out);
  expect_chain(y);
  for (float& v : w) v *= -0.5f;  // w is outside every scope: seen at once
  gemm_xwt_rowstable(x.data(), w.data(), none, y.data(), n, in, out);
  expect_chain(y);
  {
    const WeightCache scope(w.data(), out * in);
    gemm_xwt_rowstable(x.data(), w.data(), none, y.data(), n, in, out);
    expect_chain(y);
  }
  for (float& v : w) v += 1.0f;  // between two scopes over w, with `beside` still alive
  const WeightCache again(w.data(), out * in);
  gemm_xwt_rowstable(x.data(), w.data(), none, y.data(), n, in, out);
  expect_chain(y);
  EXPECT_EQ(weight_cache_bytes(), (out + 15) / 16 * 16 * in * 4) << "w's panels, kept";
}

// Past AHA_WEIGHT_CACHE_MB the weights are packed per call: nothing is kept, the same values.
TEST(Tensor, WeightCacheKeepsNothingPastItsBudget) {
  const int64_t in = 40, out = 35, n = 3;
  auto x = randv(n * in, 1), w = randv(out * in, 2);
  std::vector<float> y(n * out), want(n * out);
  gemm_xwt_rowstable(x.data(), w.data(), static_cast<const float*>(nullptr), want.data(), n, in,
                     out);
  ASSERT_EQ(setenv("AHA_WEIGHT_CACHE_MB", "0", 1), 0);
  {
    const WeightCache scope(w.data(), out * in);  // the budget is read as the first scope opens
    gemm_xwt_rowstable(x.data(), w.data(), static_cast<const float*>(nullptr), y.data(), n, in,
                       out);
    EXPECT_EQ(weight_cache_bytes(), 0);
    EXPECT_EQ(y, want);
  }
  unsetenv("AHA_WEIGHT_CACHE_MB");
}

// The attention's dot-product GEMM: each output is dot_stable of its row and column, in any
// sub-batch, and strided operands give the same bits.
TEST(Tensor, SerialDotGemmIsDotStablePerOutput) {
  for (auto [in, out] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {15, 17}, {33, 70}, {144, 65}, {257, 20}}) {
    auto x = randv(19 * in, 7), w = randv(out * in, 8), b = randv(out, 9);
    std::vector<float> full(19 * out);
    gemm_xwt_rowstable_serial(x.data(), w.data(), b.data(), full.data(), 19, in, out);
    for (int64_t i = 0; i < 19; ++i) {
      for (int64_t j = 0; j < out; ++j) {
        ASSERT_EQ(full[i * out + j], dot_stable(x.data() + i * in, w.data() + j * in, in) + b[j]);
      }
    }
    for (auto [first, rows] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {5, 3}, {2, 9}}) {
      std::vector<float> part(rows * out);
      gemm_xwt_rowstable_serial(x.data() + first * in, w.data(), b.data(), part.data(), rows, in,
                                out);
      for (int64_t e = 0; e < rows * out; ++e) ASSERT_EQ(part[e], full[first * out + e]);
    }
    // Strided operands: a column slice of x and y, every other row of w.
    std::vector<float> xs(19 * (in + 3)), ws(2 * out * in), ys(19 * (out + 5), -1.f);
    for (int64_t i = 0; i < 19; ++i) std::copy_n(x.data() + i * in, in, xs.data() + i * (in + 3));
    for (int64_t j = 0; j < out; ++j) std::copy_n(w.data() + j * in, in, ws.data() + 2 * j * in);
    gemm_xwt_rowstable_serial(xs.data(), ws.data(), b.data(), ys.data(), 19, in, out, in + 3,
                              2 * in, out + 5);
    for (int64_t i = 0; i < 19; ++i) {
      for (int64_t j = 0; j < out; ++j) ASSERT_EQ(ys[i * (out + 5) + j], full[i * out + j]);
    }
  }
}

// Also of zeros past a row's own k (MLA's prefill pads each row's scores past its causal keys).
TEST(Tensor, SequentialXwRowsAreIndependentOfTheBatch) {
  for (auto [k, out] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 16}, {65, 33}, {32, 128}, {100, 47}}) {
    const int64_t ldw = out + 3;
    auto x = randv(13 * k, 10), w = randv(k * ldw, 11);
    std::vector<float> full(13 * out);
    gemm_xw_seq(x.data(), w.data(), full.data(), 13, k, out, ldw);
    for (int64_t i = 0; i < 13; ++i) {
      for (int64_t j = 0; j < out; ++j) {
        double ref = 0, mag = 0;
        for (int64_t t = 0; t < k; ++t) {
          ref += double(x[i * k + t]) * w[t * ldw + j];
          mag += std::abs(double(x[i * k + t]) * w[t * ldw + j]);
        }
        ASSERT_NEAR(full[i * out + j], ref, 1e-5 * mag + 1e-6) << k << "x" << out;
      }
    }
    for (auto [first, rows] : std::vector<std::pair<int64_t, int64_t>>{
             {0, 1}, {12, 1}, {3, 4}, {2, 9}, {1, 2}, {5, 7}}) {
      std::vector<float> part(rows * out);
      gemm_xw_seq(x.data() + first * k, w.data(), part.data(), rows, k, out, ldw);
      for (int64_t e = 0; e < rows * out; ++e) ASSERT_EQ(part[e], full[first * out + e]) << k;
    }
    // Row i keeps its first k_i terms, zeros after: the same bits as its k_i terms alone.
    std::vector<float> padded = x;
    for (int64_t i = 0; i < 13; ++i) {
      std::fill(padded.begin() + i * k + (i * 5 % k) + 1, padded.begin() + (i + 1) * k, 0.0f);
    }
    gemm_xw_seq(padded.data(), w.data(), full.data(), 13, k, out, ldw);
    for (int64_t i = 0; i < 13; ++i) {
      const int64_t ki = i * 5 % k + 1;
      std::vector<float> alone(out);
      gemm_xw_seq(padded.data() + i * k, w.data(), alone.data(), 1, ki, out, ldw);
      for (int64_t j = 0; j < out; ++j) ASSERT_EQ(full[i * out + j], alone[j]) << k << " row " << i;
    }
  }
}

// The decode cache's rows under bf16: `packed` leading values as bf16 blocks, then floats. The
// products over them have the bits of the float products over the widened rows.
TEST(Tensor, PackedBf16RowsGiveTheBitsOfTheirWidenedRows) {
  for (auto [packed, rest] : std::vector<std::pair<int64_t, int64_t>>{
           {32, 0}, {32, 16}, {64, 16}, {128, 16}, {128, 9}, {96, 35}}) {
    const int64_t in = packed + rest, ld = packed / 2 + rest + 3;  // rows with a gap after them
    for (int64_t T : {1, 2, 7, 16, 37}) {
      const std::vector<float> src = randv(T * in, 12);
      std::vector<float> rows(T * ld, -7.0f), wide(T * in);
      for (int64_t t = 0; t < T; ++t) {
        pack_bf16_blocks(src.data() + t * in, packed, rows.data() + t * ld);
        std::copy_n(src.data() + t * in + packed, rest, rows.data() + t * ld + packed / 2);
        unpack_bf16_blocks(rows.data() + t * ld, packed, wide.data() + t * in);
        std::copy_n(src.data() + t * in + packed, rest, wide.data() + t * in + packed);
        for (int64_t j = 0; j < packed; ++j) {  // bf16 rounding: within half a bf16 ulp
          ASSERT_NEAR(wide[t * in + j], src[t * in + j], std::abs(src[t * in + j]) / 256);
        }
      }
      // Scores: 11 query rows against the T rows; values: those weights times the latents.
      const int64_t n = 11;
      const std::vector<float> q = randv(n * in, 13);
      std::vector<float> s_wide(n * T), s_packed(n * T, 5.0f);
      const float* none = nullptr;
      gemm_xwt_rowstable_serial(q.data(), wide.data(), none, s_wide.data(), n, in, T, in, in, T);
      gemm_xwt_rowstable_serial_packed(q.data(), rows.data(), packed, s_packed.data(), n, in, T,
                                       in, ld, T);
      for (int64_t e = 0; e < n * T; ++e) ASSERT_EQ(s_packed[e], s_wide[e]) << packed << "/" << T;
      std::vector<float> o_wide(n * packed), o_packed(n * packed, 5.0f);
      gemm_xw_seq(s_wide.data(), wide.data(), o_wide.data(), n, T, packed, in);
      gemm_xw_seq_packed(s_wide.data(), rows.data(), o_packed.data(), n, T, packed, ld);
      for (int64_t e = 0; e < n * packed; ++e) ASSERT_EQ(o_packed[e], o_wide[e]) << packed;
    }
  }
  std::vector<float> x(48), y(24);
  EXPECT_THROW(pack_bf16_blocks(x.data(), 48, y.data()), Error);
}

// Packed operands and cache rows are read with 64-byte loads and AMX tile rows, each split
// over two cache lines when the buffer starts 16 bytes into one (malloc's alignment).
TEST(Aligned, ArraysAndVectorsStartOnACacheLine) {
  for (size_t n : {size_t{1}, size_t{3}, size_t{17}, size_t{1000}, size_t{40000}, size_t{1} << 20}) {
    const AlignedArray<float> a = aligned_array<float>(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.get()) % kCacheLine, 0u) << n;
    std::vector<float, LineAllocator<float>> v(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kCacheLine, 0u) << n;
    v.resize(3 * n + 5);  // a grown vector moves to a new block, aligned too
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kCacheLine, 0u) << n;
  }
}

}  // namespace
}  // namespace aha
