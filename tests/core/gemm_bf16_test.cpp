#include "aha/core/gemm_bf16.h"

#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/core/weight_cache.h"

namespace aha {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

float round_bf16(float x) { return from_bf16(to_bf16(x)); }

// Runs products on one bf16 kernel while it lives; `ok` is false where the CPU cannot run it.
class KernelScope {
 public:
  explicit KernelScope(const char* name) : prev_(bf16_kernel()) {
    try {
      set_bf16_kernel(name);
      ok = true;
    } catch (const Error&) {
      ok = false;
    }
  }
  ~KernelScope() { set_bf16_kernel(prev_); }
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;
  bool ok = false;

 private:
  std::string prev_;
};

// a (rows x cols, row-major) transposed.
std::vector<float> transposed(const std::vector<float>& a, int64_t rows, int64_t cols) {
  std::vector<float> t(a.size());
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t q = 0; q < cols; ++q) t[q * rows + i] = a[i * cols + q];
  }
  return t;
}

// Calls f(m, n, k, a, b, layout, c, bias) for every layout of a and b, odd k and tails of rows
// and columns (shapes past one AMX tile of 32 rows and 16 pairs included), with c = 0.5 + a b^T
// + bias accumulated; and again without a bias (bias all zero), which AMX sums in the tile.
template <typename F>
void for_every_layout_and_tail(F&& check) {
  for (int64_t m : {1, 3, 8, 13, 17, 70}) {
    for (int64_t n : {1, 17, 48, 100}) {
      for (int64_t k : {1, 2, 7, 64, 129}) {
        auto a = randn(size_t(m * k), 1), b = randn(size_t(n * k), 2), bias = randn(size_t(n), 3);
        const std::vector<float> no_bias(size_t(n), 0.0f);
        const auto at = transposed(a, m, k), bt = transposed(b, n, k);
        for (int layout = 0; layout < 8; ++layout) {
          const bool ta = layout & 1, tb = layout & 2, with_bias = (layout & 4) == 0;
          MatRef ra{ta ? at.data() : a.data(), ta ? m : k, ta};
          MatRef rb{tb ? bt.data() : b.data(), tb ? n : k, tb};
          std::vector<float> c(size_t(m * n), 0.5f);
          gemm_bf16(m, n, k, ra, rb, c.data(), n, true, with_bias ? bias.data() : nullptr);
          check(m, n, k, a, b, layout, c, with_bias ? bias : no_bias);
        }
      }
    }
  }
}

// The documented sum, written plainly: pairs in k order, high element first.
float reference(const float* a, const float* b, int64_t k) {
  float s = 0.0f;
  for (int64_t p = 0; p < (k + 1) / 2; ++p) {
    const float ah = 2 * p + 1 < k ? round_bf16(a[2 * p + 1]) : 0.0f;
    const float bh = 2 * p + 1 < k ? round_bf16(b[2 * p + 1]) : 0.0f;
    s += ah * bh;
    s += round_bf16(a[2 * p]) * round_bf16(b[2 * p]);
  }
  return s;
}

TEST(Bf16, RoundingIsNearestEvenAndFlushesSubnormals) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  uint32_t u = 0x3f808000u;  // exactly half way between 0x3f80 and 0x3f81: even wins
  float x;
  std::memcpy(&x, &u, 4);
  EXPECT_EQ(to_bf16(x), 0x3f80);
  u = 0x3f818000u;  // half way between 0x3f81 and 0x3f82: even (0x3f82)
  std::memcpy(&x, &u, 4);
  EXPECT_EQ(to_bf16(x), 0x3f82);
  u = 0x3f808001u;
  std::memcpy(&x, &u, 4);
  EXPECT_EQ(to_bf16(x), 0x3f81);
  EXPECT_EQ(to_bf16(1e-40f), 0);
  EXPECT_EQ(to_bf16(-1e-40f), 0x8000);
  EXPECT_EQ(to_bf16(3.0e38f), 0x7f62);
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isinf(from_bf16(to_bf16(3.4e38f))));  // rounds past the largest bf16
}

float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// The packing (vectorised, by instruction where the build's CPU converts to bf16) rounds every
// operand as to_bf16 does: ties to even, subnormals to zero, overflow to infinity, NaN kept.
// Through products with the identity, for both operands and every layout, at widths that take
// the whole-vector and the tail conversions.
TEST(Bf16, PackingRoundsLikeToBf16) {
  const std::vector<uint32_t> finite = {0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f80ffffu,
                                        0x00000001u, 0x807fffffu, 0x7f7f0000u, 0xbf7fffffu,
                                        0x40490fdbu, 0x00800000u, 0x80000000u, 0x3eaaaaabu};
  for (int64_t k : {16, 32, 35}) {
    const int64_t m = 20;
    std::vector<float> a(size_t(m * k)), eye(size_t(k * k), 0.0f);
    for (int64_t i = 0; i < m * k; ++i) {  // the values with either sign
      a[i] = from_bits(finite[size_t(i) % finite.size()] ^ (uint32_t(i / 7) << 31));
    }
    for (int64_t q = 0; q < k; ++q) eye[q * k + q] = 1.0f;
    const auto at = transposed(a, m, k);
    for (int layout = 0; layout < 4; ++layout) {
      const bool ta = layout & 1, swap = layout & 2;
      MatRef ra{ta ? at.data() : a.data(), ta ? m : k, ta}, re{eye.data(), k, false};
      std::vector<float> c(size_t(m * k));
      if (swap) {  // c^T = I a^T: a is the second operand
        gemm_bf16(k, m, k, re, ra, c.data(), m, false, nullptr);
      } else {
        gemm_bf16(m, k, k, ra, re, c.data(), k, false, nullptr);
      }
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t q = 0; q < k; ++q) {
          const float got = swap ? c[q * m + i] : c[i * k + q];
          const float want = round_bf16(a[i * k + q]);
          // A zero's sign is lost to the sum (-0 + 0 = +0), so zeros compare as values.
          if (want == 0.0f) {
            ASSERT_EQ(got, 0.0f) << "k " << k << " layout " << layout << " at " << i << "," << q;
            continue;
          }
          ASSERT_EQ(std::memcmp(&got, &want, 4), 0)
              << "k " << k << " layout " << layout << " at " << i << "," << q << ": " << got
              << " for " << want;
        }
      }
    }
  }
  // Non-finite values poison their row (x * 0 is NaN); the row must be NaN or infinite, and a
  // value that rounds past the largest bf16 gives infinity on the diagonal's row.
  for (float v : {std::nanf(""), -std::nanf(""), from_bits(0x7f7fffffu), INFINITY}) {
    const int64_t k = 32;
    std::vector<float> a(size_t(k), 1.0f), one(size_t(k), 0.0f), c(1);
    a[5] = v;
    one[5] = 1.0f;
    gemm_bf16(1, 1, k, {a.data(), k, false}, {one.data(), k, false}, c.data(), 1, false, nullptr);
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(c[0])) << v;
    } else {
      EXPECT_EQ(c[0], INFINITY) << v;  // 1 * inf, plus exact zeros
    }
  }
}

// Every layout, odd k and tails of rows and columns give exactly the documented sums.
TEST(Bf16, GemmIsTheDocumentedSumForEveryLayoutAndTail) {
  std::printf("bf16 kernel on this CPU: %s\n", bf16_kernel());
  for (const char* name : {"avx512bf16", "emulated"}) {
    KernelScope kernel(name);
    if (!kernel.ok) continue;  // no AVX512-BF16: the emulation alone
    for_every_layout_and_tail([&](int64_t m, int64_t n, int64_t k, const auto& a, const auto& b,
                                  int layout, const auto& c, const auto& bias) {
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          const float want = 0.5f + reference(&a[i * k], &b[j * k], k) + bias[j];
          ASSERT_EQ(c[i * n + j], want) << name << " " << m << "x" << n << "x" << k << " layout "
                                        << layout << " at " << i << "," << j;
        }
      }
    });
  }
}

// AMX sums the same exact products in its own order: within fp32 rounding of the exact sum, for
// every layout and tail (a tile that read a wrong row, pair block or panel would be off by O(1)).
TEST(Bf16, AmxSumsTheBf16ProductsForEveryLayoutAndTail) {
  KernelScope kernel("amx");
  if (!kernel.ok) GTEST_SKIP() << "no AMX-BF16 on this CPU";
  for_every_layout_and_tail([&](int64_t m, int64_t n, int64_t k, const auto& a, const auto& b,
                                int layout, const auto& c, const auto& bias) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double exact = 0.0, mag = 0.0;
        for (int64_t q = 0; q < k; ++q) {
          const double prod = double(round_bf16(a[i * k + q])) * round_bf16(b[j * k + q]);
          exact += prod;
          mag += std::abs(prod);
        }
        const double want = 0.5 + exact + bias[j];
        const double tol = (mag + 1.0 + std::abs(bias[j])) * std::ldexp(1.0, -20);
        ASSERT_NEAR(c[i * n + j], want, tol) << m << "x" << n << "x" << k << " layout " << layout
                                             << " at " << i << "," << j;
      }
    }
  });
}

TEST(Bf16, KernelNamesAreChecked) {
  try {
    set_bf16_kernel("fp8");
    FAIL() << "an unknown kernel was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AHA_BF16_KERNEL: 'fp8' is not a bf16 kernel"),
              std::string::npos)
        << e.what();
  }
  KernelScope emulated("emulated");
  EXPECT_TRUE(emulated.ok);
  EXPECT_STREQ(bf16_kernel(), "emulated");
}

// A row's outputs do not depend on the batch around it, its place in a tile, the thread count
// or serial mode, under every kernel the CPU runs.
TEST(Bf16, RowsAreBatchAndThreadInvariant) {
  const int64_t k = 384, n = 200, rows = 70, target = 21;
  auto w = randn(size_t(n * k), 7, 0.05f);
  auto x = randn(size_t(rows * k), 8);
  for (const char* name : {"amx", "avx512bf16", "emulated"}) {
    KernelScope kernel(name);
    if (!kernel.ok) continue;
    std::vector<float> alone(n);
    gemm_bf16(1, n, k, {x.data() + target * k, k, false}, {w.data(), k, false}, alone.data(), n,
              false, nullptr, true);
    for (int threads : {1, 2}) {
      tbb::global_control gc(tbb::global_control::max_allowed_parallelism, threads);
      // The batch starts at row `first`: the target row sits at place target - first.
      for (int64_t first : {0, 4, 5, 16, 20, 21}) {
        for (int64_t m : {target - first + 1, target - first + 9, rows - first}) {
          std::vector<float> c(size_t(m * n));
          gemm_bf16(m, n, k, {x.data() + first * k, k, false}, {w.data(), k, false}, c.data(), n,
                    false, nullptr);
          ASSERT_EQ(0, std::memcmp(c.data() + (target - first) * n, alone.data(),
                                   n * sizeof(float)))
              << name << ", " << threads << " threads, rows " << first << ".." << first + m;
        }
      }
    }
  }
}

// The error against fp64 on the unrounded inputs is what bf16 rounding of the operands allows.
TEST(Bf16, ErrorIsThatOfBf16Operands) {
  const int64_t m = 16, n = 64, k = 1024;
  auto a = randn(size_t(m * k), 11), b = randn(size_t(n * k), 12);
  std::vector<float> c(size_t(m * n));
  gemm_bf16(m, n, k, {a.data(), k, false}, {b.data(), k, false}, c.data(), n, false, nullptr);
  double worst = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0, mag = 0.0;
      for (int64_t q = 0; q < k; ++q) {
        s += double(a[i * k + q]) * b[j * k + q];
        mag += std::abs(double(a[i * k + q]) * b[j * k + q]);
      }
      worst = std::max(worst, std::abs(c[i * n + j] - s) / mag);
    }
  }
  EXPECT_LT(worst, 2.0 * std::ldexp(1.0, -8));  // two operands, each within 2^-9
  EXPECT_GT(worst, 1e-6);                       // and it is really bf16, not fp32
}

// A linear layer's weight gradient under bf16 (dw += dy^T x), wide outputs and narrow, ragged
// sizes: the bf16 products' sum added to dw's old values, under every kernel the CPU has; the
// same bits under the two whose sums have one documented order.
TEST(Bf16, WeightGradientIsTheBf16SumForWideAndNarrowOutputs) {
  MatmulPrecisionScope bf16(MatmulPrecision::bf16);
  for (const auto [n, in, out] : {std::tuple{37, 20, 45}, std::tuple{37, 45, 20},
                                  std::tuple{70, 16, 33}, std::tuple{64, 48, 48},
                                  std::tuple{300, 64, 200}}) {
    SCOPED_TRACE(testing::Message() << n << " tokens, " << in << " -> " << out);
    const auto dy = randn(size_t(n * out), 21), x = randn(size_t(n * in), 22);
    const auto dw0 = randn(size_t(out * in), 23);
    std::vector<float> documented;
    for (const char* name : {"emulated", "avx512bf16", "amx"}) {
      KernelScope kernel(name);
      if (!kernel.ok) continue;
      std::vector<float> dw = dw0;
      gemm_dytx(dy.data(), x.data(), dw.data(), static_cast<float*>(nullptr), n, in, out);
      for (int64_t o = 0; o < out; ++o) {
        for (int64_t i = 0; i < in; ++i) {
          double s = dw0[o * in + i], mag = std::abs(s);
          for (int64_t t = 0; t < n; ++t) {
            const double p = double(round_bf16(dy[t * out + o])) * round_bf16(x[t * in + i]);
            s += p;
            mag += std::abs(p);
          }
          ASSERT_NEAR(dw[o * in + i], s, 1e-6 * mag) << name << " " << o << "," << i;
        }
      }
      {  // the same bits on one thread (the packing's and the product's splits)
        std::vector<float> one = dw0;
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
        gemm_dytx(dy.data(), x.data(), one.data(), static_cast<float*>(nullptr), n, in, out);
        EXPECT_EQ(one, dw) << name;
      }
      if (std::string(name) == "amx") continue;
      if (documented.empty()) {
        documented = dw;
      } else {
        EXPECT_EQ(dw, documented) << name;
      }
    }
  }
}

// The copies of a weight that MLA's absorbed decode multiplies by give to_bf16's bits for every
// value, NaN and subnormals included, with or without a live cache, at sizes past one block of
// the threads' split: bf16_rounded as floats, bf16_blocks in pack_bf16_blocks' blocks (word l of
// a block of 32 values holds value l in its low half and value l + 16 in its high half).
TEST(Bf16, CopiesForTheAbsorbedDecodeAreToBf16BitForBit) {
  const std::vector<uint32_t> special = {0x3f808000u, 0x3f818000u, 0x3f808001u, 0x00000001u,
                                         0x807fffffu, 0x7f7fffffu, 0x7fc00001u, 0xff800001u,
                                         0x7f800000u, 0x80000000u, 0x3eaaaaabu, 0x00800000u};
  for (int64_t size : {int64_t{32}, int64_t{37}, int64_t{16384 * 2 + 96}}) {
    std::vector<float> w(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i) {
      w[i] = from_bits(special[size_t(i) % special.size()] ^ (uint32_t(i / 5) << 31));
    }
    for (bool cached : {false, true}) {
      std::unique_ptr<WeightCache> cache;
      if (cached) cache = std::make_unique<WeightCache>(w.data(), size);
      std::vector<float> rounded_storage, blocks_storage;
      const float* rounded = bf16_rounded(w.data(), size, &rounded_storage);
      const float* blocks = size % 32 == 0 ? bf16_blocks(w.data(), size, &blocks_storage) : nullptr;
      for (int64_t i = 0; i < size; ++i) {
        const uint32_t want = to_bf16(w[i]);
        uint32_t got;
        std::memcpy(&got, rounded + i, 4);
        ASSERT_EQ(got, want << 16) << "rounded, size " << size << " at " << i << " " << cached;
        if (blocks == nullptr) continue;
        std::memcpy(&got, blocks + i / 32 * 16 + i % 16, 4);
        ASSERT_EQ(i % 32 < 16 ? got & 0xffffu : got >> 16, want)
            << "blocks, size " << size << " at " << i << " " << cached;
      }
    }
  }
}

// MLA's copy with each group's tail rows transposed: group g's first head rows as bf16_blocks
// lays them out, then for each column c its tail values (rows head .. head + tail - 1) as one
// row of blocks, to_bf16's bits, with or without a live cache; another split of the same weight
// is another copy.
TEST(Bf16, TailTransposedCopyHoldsEachGroupsColumnsAsRows) {
  const int64_t groups = 3, cols = 64;
  auto w = randn(size_t(groups * 96 * cols), 41);
  auto word = [](const float* blocks, int64_t i) {  // value i of a run of blocks
    uint32_t got;
    std::memcpy(&got, blocks + i / 32 * 16 + i % 16, 4);
    return i % 32 < 16 ? got & 0xffffu : got >> 16;
  };
  for (bool cached : {false, true}) {
    std::unique_ptr<WeightCache> cache;
    if (cached) cache = std::make_unique<WeightCache>(w.data(), int64_t(w.size()));
    for (const auto& [head, tail] : {std::pair<int64_t, int64_t>{32, 64}, {64, 32}}) {
      std::vector<float> storage;
      const float* v = bf16_blocks_tail_transposed(w.data(), groups, head, tail, cols, &storage);
      const int64_t rows = head + tail;
      for (int64_t g = 0; g < groups; ++g) {
        const float* src = w.data() + g * rows * cols;
        const float* dst = v + g * rows * cols / 2;
        for (int64_t i = 0; i < head * cols; ++i) {
          ASSERT_EQ(word(dst, i), to_bf16(src[i])) << "head " << g << " " << i << " " << cached;
        }
        for (int64_t c = 0; c < cols; ++c) {
          for (int64_t j = 0; j < tail; ++j) {
            ASSERT_EQ(word(dst + (head * cols + c * tail) / 2, j),
                      to_bf16(src[(head + j) * cols + c]))
                << "tail " << g << " " << c << " " << j << " " << cached << " " << head;
          }
        }
      }
    }
  }
  std::vector<float> storage;
  EXPECT_THROW(bf16_blocks_tail_transposed(w.data(), groups, 80, 16, cols, &storage), Error);
}

// The forward's accumulating products (gemm_bf16_weight) add their sums to y after, under every
// kernel, with or without a live cache: the bits of the decode path's sum-then-add.
TEST(Bf16, WeightProductAddsItsSumsAfter) {
  for (const char* name : {"amx", "avx512bf16", "emulated"}) {
    KernelScope kernel(name);
    if (!kernel.ok) continue;
    for (int64_t m : {1, 16, 40}) {
      const int64_t n = 48, k = 200;
      auto x = randn(size_t(m * k), 31), w = randn(size_t(n * k), 32), y0 = randn(size_t(m * n), 33);
      std::vector<float> sums(size_t(m * n)), want(y0);
      gemm_bf16(m, n, k, {x.data(), k, false}, {w.data(), k, false}, sums.data(), n, false,
                nullptr);
      for (size_t i = 0; i < want.size(); ++i) want[i] += sums[i];
      for (bool cached : {false, true}) {
        std::unique_ptr<WeightCache> cache;
        if (cached) cache = std::make_unique<WeightCache>(w.data(), int64_t(w.size()));
        std::vector<float> got(y0);
        gemm_bf16_weight(m, n, k, x.data(), k, w.data(), got.data(), n, true, nullptr);
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)))
            << name << " rows " << m << (cached ? " cached" : "");
      }
    }
  }
}

// A decode loop's cache packs a weight once: the same values as packing it every call, and a
// weight changed after the cache ends is seen.
TEST(Bf16, WeightCacheGivesTheSameValuesAndEndsWithItsScope) {
  const int64_t m = 5, n = 40, k = 33;
  auto x = randn(size_t(m * k), 21), w = randn(size_t(n * k), 22), bias = randn(size_t(n), 23);
  std::vector<float> want(size_t(m * n)), got(size_t(m * n));
  gemm_bf16(m, n, k, {x.data(), k, false}, {w.data(), k, false}, want.data(), n, false,
            bias.data());
  {
    WeightCache cache(w.data(), int64_t(w.size()));
    for (int rep = 0; rep < 2; ++rep) {
      gemm_bf16_weight(m, n, k, x.data(), k, w.data(), got.data(), n, false, bias.data());
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));
    }
    std::vector<float> storage;
    const float* r = bf16_rounded(w.data(), int64_t(w.size()), &storage);
    for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(r[i], round_bf16(w[i]));
    EXPECT_TRUE(storage.empty()) << "cached, not copied per call";
  }
  for (auto& v : w) v *= 2.0f;
  gemm_bf16_weight(m, n, k, x.data(), k, w.data(), got.data(), n, false, nullptr);
  gemm_bf16(m, n, k, {x.data(), k, false}, {w.data(), k, false}, want.data(), n, false, nullptr);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));
}

// An operand packed once (the training attention's keys and values) gives gemm_bf16's bits on
// its leading rows and values, under every kernel, both layouts, serial or not, accumulating or
// not; a depth that is neither the operand's nor a multiple of 32 is refused.
TEST(Bf16, PackedOperandGivesGemmBf16sBitsOnItsLeadingRowsAndValues) {
  const int64_t nb = 70, kb = 200;
  const auto b = randn(size_t(nb * kb), 41);
  for (const char* name : {"amx", "avx512bf16", "emulated"}) {
    KernelScope kernel(name);
    if (!kernel.ok) continue;
    for (bool trans : {false, true}) {
      // trans: b holds kb rows of nb values, element (j, t) at t * nb + j.
      const std::vector<float> src = trans ? transposed(b, nb, kb) : b;
      const MatRef whole{src.data(), trans ? nb : kb, trans};
      std::vector<uint32_t> words(size_t(bf16_packed_words(nb, kb)));
      pack_bf16_operand(whole, nb, kb, words.data());
      for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{
               {70, 200}, {64, 200}, {33, 128}, {70, 64}, {16, 32}, {5, 200}}) {
        for (int64_t m : {1, 9, 40}) {
          const auto a = randn(size_t(m * k), 42), c0 = randn(size_t(m * n), 43);
          const auto at = transposed(a, m, k);  // a transposed left operand packs as a panel
          for (bool a_trans : {false, true}) {
            const MatRef ra = a_trans ? MatRef{at.data(), m, true} : MatRef{a.data(), k, false};
            for (bool acc : {false, true}) {
              for (bool serial : {false, true}) {
                std::vector<float> want(c0), got(c0);
                gemm_bf16(m, n, k, ra, whole, want.data(), n, acc, nullptr, serial);
                gemm_bf16_packed(m, n, k, ra, words.data(), kb, got.data(), n, acc, serial);
                ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)))
                    << name << (trans ? " trans" : "") << (a_trans ? " a_trans" : "") << " n "
                    << n << " k " << k << " m " << m << (acc ? " acc" : "")
                    << (serial ? " serial" : "");
              }
            }
          }
        }
      }
      std::vector<float> c(4 * nb);
      EXPECT_THROW(gemm_bf16_packed(4, nb, 100, {b.data(), 100, false}, words.data(), kb, c.data(),
                                    nb, false),
                   Error);
    }
  }
}

TEST(Bf16, PrecisionNamesParse) {
  MatmulPrecision p;
  EXPECT_TRUE(parse_matmul_precision("bf16", &p));
  EXPECT_EQ(p, MatmulPrecision::bf16);
  EXPECT_TRUE(parse_matmul_precision("fp32", &p));
  EXPECT_EQ(p, MatmulPrecision::fp32);
  EXPECT_FALSE(parse_matmul_precision("fp16", &p));
  EXPECT_FALSE(parse_matmul_precision(nullptr, &p));
}

}  // namespace
}  // namespace aha
