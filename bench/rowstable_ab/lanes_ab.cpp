// The prototype of what is now aha's gemm_xwt_lanes (core/src/tensor_lanes.cpp), kept as measured
// against the dot-product kernel: a batch-invariant GEMM with the outputs in the SIMD
// lanes over weights packed k-major ([out / 16][in][16]), each output one in-order chain of fused
// multiply-adds over k, against gemm_xwt_rowstable (then a 16-lane dot product and its reduction
// tree per output; since 376775b this kernel itself) at 16 rows (a routed expert's rows at decode batch 64) or ROWS, a multiple of 16.
// Either gives each row the same bits in any batch; they differ from each other. Cycling through
// N_WEIGHTS distinct weights makes them arrive cold (500 of 256 x 128 = 65 MB). One thread, CPU
// time, best of 7 turns.
// Run through run.sh (AB_MAIN=bench/rowstable_ab/lanes_ab.cpp; REV is then unused):
//   lanes_ab IN OUT N_WEIGHTS [ROWS]
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "aha/core/tensor.h"

namespace {

typedef float V16 __attribute__((vector_size(64)));

double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// R rows by NV packed 16-column panels of y = x W^T.
template <int R, int NV>
void tile(const float* x, int64_t ldx, const float* wp, int64_t in, float* y, int64_t ldy) {
  V16 acc[R][NV] = {};
  for (int64_t k = 0; k < in; ++k) {
    V16 w[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&w[v], wp + (v * in + k) * 16, sizeof(V16));
    for (int r = 0; r < R; ++r) {
      const float s = x[r * ldx + k];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * w[v];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) std::memcpy(y + r * ldy + v * 16, &acc[r][v], sizeof(V16));
  }
}

// n a multiple of R, out of 16 * NV (enough for the shapes measured here).
template <int R, int NV>
void gemm_lanes(const float* x, const float* wp, float* y, int64_t n, int64_t in, int64_t out) {
  for (int64_t j = 0; j < out; j += 16 * NV) {
    for (int64_t i = 0; i < n; i += R) tile<R, NV>(x + i * in, in, wp + j * in, in, y + i * out + j, out);
  }
}

template <class F>
double best_gflops(F f, double flop, int n_weights) {
  double best = 0;
  for (int turn = 0; turn < 7; ++turn) {
    int calls = 0;
    const double t0 = cpu_s();
    double t = t0;
    do {
      f(calls % n_weights);
      ++calls;
      t = cpu_s();
    } while (t - t0 < 0.05);
    best = std::max(best, flop * calls / (t - t0) / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 1);
  const int64_t in = argc > 1 ? std::atoi(argv[1]) : 256;
  const int64_t out = argc > 2 ? std::atoi(argv[2]) : 128;
  const int n_weights = argc > 3 ? std::atoi(argv[3]) : 1;
  const int64_t n = argc > 4 ? std::atoi(argv[4]) : 16;
  if (out % 32 != 0 || n % 16 != 0) {
    std::fprintf(stderr, "error: OUT must be a multiple of 32 and ROWS of 16\n");
    return 1;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> w(n_weights, std::vector<float>(in * out)), packed = w;
  for (int q = 0; q < n_weights; ++q) {
    for (float& v : w[q]) v = normal(rng);
    for (int64_t j = 0; j < out; ++j) {
      for (int64_t k = 0; k < in; ++k) packed[q][(j / 16 * in + k) * 16 + j % 16] = w[q][j * in + k];
    }
  }
  std::vector<float> x(n * in), y0(n * out), y1(n * out);
  for (float& v : x) v = normal(rng);
  const float* none = nullptr;
  // Check once before timing: both compute the same products, up to rounding.
  aha::gemm_xwt_rowstable(x.data(), w[0].data(), none, y0.data(), n, in, out);
  gemm_lanes<8, 2>(x.data(), packed[0].data(), y1.data(), n, in, out);
  double worst = 0;
  for (int64_t i = 0; i < n * out; ++i) {
    worst = std::max(worst, double(std::abs(y0[i] - y1[i])) / (1 + std::abs(y0[i])));
  }
  if (worst > 1e-4) {
    std::fprintf(stderr, "error: the two kernels differ by %g\n", worst);
    return 1;
  }
  const double flop = 2.0 * n * in * out;
  const double stable = best_gflops(
      [&](int q) { aha::gemm_xwt_rowstable(x.data(), w[q].data(), none, y0.data(), n, in, out); },
      flop, n_weights);
  const double l82 = best_gflops(
      [&](int q) { gemm_lanes<8, 2>(x.data(), packed[q].data(), y1.data(), n, in, out); }, flop,
      n_weights);
  const double l161 = best_gflops(
      [&](int q) { gemm_lanes<16, 1>(x.data(), packed[q].data(), y1.data(), n, in, out); }, flop,
      n_weights);
  std::printf(
      "%lld rows x %lld -> %lld, %d weights (%.1f MB): rowstable %.1f, lanes 8x2 %.1f, lanes 16x1 "
      "%.1f GFLOP/s (max rel diff %.1e)\n",
      static_cast<long long>(n), static_cast<long long>(in), static_cast<long long>(out), n_weights,
      n_weights * in * out * 4 / 1e6, stable, l82, l161, worst);
  return 0;
}
