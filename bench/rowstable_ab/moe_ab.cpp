// Paired A/B of the routed experts' MLP phase of a decode step (see run.sh: AB_MAIN selects this
// file): old_ is the row-stable kernel at the given revision, the other the working tree's. The
// phase is `small`'s by default, as policy/src/moe.cpp runs it: 16 experts, 4 per token, each
// expert's rows gathered, gate and up products, SwiGLU, down product, the experts in a TBB loop.
// LAYERS distinct layers of expert weights are cycled, so with the default 5 (31 MB, about the
// L3) the weights arrive cold as in a decode step, where attention runs between MoE layers; with
// 1 they stay in L3. Rounds of the two sides in turn (each at least 0.1 s, CPU time on one
// thread, wall time on more); prints each side's best, the median and range of the paired ratios
// new / old, and whether both gave the same bits.
//   moe_ab [THREADS [LAYERS [TOKENS [D_MODEL [INTER [ROUNDS]]]]]]
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <numeric>
#include <random>
#include <vector>

#include "aha/core/tensor.h"

namespace aha {
template <typename T>
void old_gemm_xwt_rowstable(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in,
                            int64_t out);
}

namespace {

using Gemm = void (*)(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);

bool g_cpu_clock = false;

double now_s() {
  timespec ts;
  clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

constexpr int kExperts = 16, kTopK = 4;

struct Phase {
  int64_t n, d, inter;
  std::vector<std::vector<float>> weights;  // per layer: per expert [gate; up; down]
  std::vector<float> x;                     // [n, d]
  std::vector<std::vector<int32_t>> slots;  // per expert: its (token, k) slots
  // Per side and expert: the gathered rows, the products, the output rows.
  std::vector<float> xin[2][kExperts], g[2][kExperts], u[2][kExperts], a[2][kExperts],
      y[2][kExperts];

  void run(Gemm gemm, int side, int layer) {
    const float* none = nullptr;
    tbb::parallel_for(0, kExperts, [&](int e) {
      const int64_t m = static_cast<int64_t>(slots[e].size());
      std::vector<float>&xe = xin[side][e], &ge = g[side][e], &ue = u[side][e],
                    &ae = a[side][e], &ye = y[side][e];
      xe.resize(m * d), ge.resize(m * inter), ue.resize(m * inter), ae.resize(m * inter);
      ye.resize(m * d);
      for (int64_t r = 0; r < m; ++r) {
        std::copy_n(x.data() + slots[e][r] / kTopK * d, d, xe.data() + r * d);
      }
      const float* gate = weights[layer].data() + size_t(e) * 3 * inter * d;
      gemm(xe.data(), gate, none, ge.data(), m, d, inter);
      gemm(xe.data(), gate + inter * d, none, ue.data(), m, d, inter);
      for (int64_t i = 0; i < m * inter; ++i) ae[i] = ge[i] / (1 + std::exp(-ge[i])) * ue[i];
      gemm(ae.data(), gate + 2 * inter * d, none, ye.data(), m, inter, d);
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int layers = argc > 2 ? std::atoi(argv[2]) : 5;
  Phase p;
  p.n = argc > 3 ? std::atoi(argv[3]) : 64;
  p.d = argc > 4 ? std::atoi(argv[4]) : 256;
  p.inter = argc > 5 ? std::atoi(argv[5]) : 128;
  const int rounds = argc > 6 ? std::atoi(argv[6]) : 15;
  g_cpu_clock = threads == 1;
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, threads);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  p.weights.assign(layers, std::vector<float>(size_t(kExperts) * 3 * p.inter * p.d));
  for (auto& w : p.weights) {
    for (float& v : w) v = 0.05f * normal(rng);
  }
  p.x.resize(p.n * p.d);
  for (float& v : p.x) v = normal(rng);
  // A random top-4 of the 16 experts per token: 16 rows per expert on average at 64 tokens.
  p.slots.assign(kExperts, {});
  for (int64_t t = 0; t < p.n; ++t) {
    std::vector<int> perm(kExperts);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int k = 0; k < kTopK; ++k) p.slots[perm[k]].push_back(static_cast<int32_t>(t * kTopK + k));
  }
  const Gemm sides[2] = {aha::old_gemm_xwt_rowstable<float>, aha::gemm_xwt_rowstable<float>};
  const double flop = 2.0 * p.n * kTopK * 3 * p.inter * p.d * layers;
  double best[2] = {0, 0};
  std::vector<double> ratios;
  for (int round = 0; round < rounds; ++round) {
    double rate[2];
    for (int s = 0; s < 2; ++s) {
      for (int l = 0; l < layers; ++l) p.run(sides[s], s, l);  // a warm-up pass
      const double t0 = now_s();
      int passes = 0;
      double elapsed = 0;
      do {
        for (int l = 0; l < layers; ++l) p.run(sides[s], s, l);
        ++passes;
        elapsed = now_s() - t0;
      } while (elapsed < 0.1);
      rate[s] = flop * passes / elapsed / 1e9;
      best[s] = std::max(best[s], rate[s]);
    }
    ratios.push_back(rate[1] / rate[0]);
  }
  std::sort(ratios.begin(), ratios.end());
  bool same = true;
  for (int e = 0; e < kExperts; ++e) same = same && p.y[0][e] == p.y[1][e];
  std::printf(
      "experts of %lld tokens, d %lld, inter %lld, %d layers, %d threads: old %.1f new %.1f "
      "GFLOP/s (best of %d)  new/old paired median %.3f [%.2f-%.2f]  %s\n",
      static_cast<long long>(p.n), static_cast<long long>(p.d), static_cast<long long>(p.inter),
      layers, threads, best[0], best[1], rounds, ratios[ratios.size() / 2], ratios.front(),
      ratios.back(), same ? "bitwise-same" : "BITS DIFFER");
  return same ? 0 : 1;
}
