// Paired A/B of gemm_xwt_rowstable (see run.sh): old_ is the kernel at the given revision, the
// other the working tree's (with a WeightCache, as in decode), blas one cblas_sgemm call on
// OpenBLAS's threads (as many as TBB's).
// Each point: three rounds of the three sides in turn, each side's best call of five turns of at
// least 20 ms (CPU time on one thread, wall time on more). Prints GFLOP/s, the ratios, and whether
// both kernels gave the same bits.
//   ab [THREADS [SHAPE_INDEX [ROWS]]]
#include <cblas.h>
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
#include "aha/core/weight_cache.h"

namespace aha {
template <typename T>
void old_gemm_xwt_rowstable(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in,
                            int64_t out);
}

namespace {

// On one thread the process's CPU time, which time slices taken by other work on a shared machine
// do not inflate; on more, wall time.
bool g_cpu_clock = false;

double now_s() {
  timespec ts;
  clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

template <class F>
double best_seconds(F f) {
  double best = 1e9;
  for (int turn = 0; turn < 5; ++turn) {
    const double t0 = now_s();
    int calls = 0;
    double elapsed = 0;
    do {
      f();
      ++calls;
      elapsed = now_s() - t0;
    } while (elapsed < 0.02);
    best = std::min(best, elapsed / calls);
  }
  return best;
}

struct Shape {
  int64_t in, out;
  const char* what;
};

// The weights of the decode and prefill products: `small`, `base` and a Qwen2.5-0.5B-shaped MLP;
// narrow ones like the absorbed attention's per-head products of `small` (k or out 32).
const Shape kShapes[] = {
    {256, 768, "small mlp up"},      {768, 256, "small mlp down"}, {256, 128, "small expert up"},
    {128, 256, "small expert down"}, {256, 2048, "small lm head"}, {512, 1536, "base mlp up"},
    {1536, 512, "base mlp down"},    {896, 4864, "0.5B mlp up"},   {4864, 896, "0.5B mlp down"},
    {32, 128, "narrow k 32"},        {128, 32, "narrow out 32"}};
const int kRows[] = {1, 16, 64, 1024};

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int only_shape = argc > 2 ? std::atoi(argv[2]) : -1;
  const int only_rows = argc > 3 ? std::atoi(argv[3]) : -1;
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, threads);
  openblas_set_num_threads(threads);
  g_cpu_clock = threads == 1;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  double log_old = 0, log_new = 0, log_blas = 0;
  int points = 0;
  bool all_same = true;
  for (int s = 0; s < static_cast<int>(std::size(kShapes)); ++s) {
    if (only_shape >= 0 && s != only_shape) continue;
    const Shape sh = kShapes[s];
    for (const int n : kRows) {
      if (only_rows >= 0 && n != only_rows) continue;
      std::vector<float> x(n * sh.in), w(sh.out * sh.in), b(sh.out);
      // As in a generate() call, the new kernel keeps its packed copy of the weight.
      const aha::WeightCache cache(w.data(), sh.out * sh.in);
      std::vector<float> y_old(n * sh.out), y_new(n * sh.out), y_blas(n * sh.out);
      for (auto* v : {&x, &w, &b}) {
        for (float& e : *v) e = normal(rng);
      }
      auto run_old = [&] {
        aha::old_gemm_xwt_rowstable(x.data(), w.data(), b.data(), y_old.data(), n, sh.in, sh.out);
      };
      auto run_new = [&] {
        aha::gemm_xwt_rowstable(x.data(), w.data(), b.data(), y_new.data(), n, sh.in, sh.out);
      };
      auto run_blas = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, sh.out, sh.in, 1.f, x.data(), sh.in,
                    w.data(), sh.in, 0.f, y_blas.data(), sh.out);
      };
      run_old();
      run_new();
      const bool same = std::memcmp(y_old.data(), y_new.data(), y_old.size() * 4) == 0;
      all_same = all_same && same;
      double t_old = 1e9, t_new = 1e9, t_blas = 1e9;
      for (int round = 0; round < 3; ++round) {
        t_old = std::min(t_old, best_seconds(run_old));
        t_new = std::min(t_new, best_seconds(run_new));
        t_blas = std::min(t_blas, best_seconds(run_blas));
      }
      const double gflop = 2e-9 * n * sh.in * sh.out;
      std::printf(
          "%-18s n=%5d %5ldx%-5ld old %6.1f new %6.1f blas %6.1f GFLOP/s  new/old %.2f "
          "new/blas %.2f %s\n",
          sh.what, n, static_cast<long>(sh.in), static_cast<long>(sh.out), gflop / t_old,
          gflop / t_new, gflop / t_blas, t_old / t_new, t_blas / t_new,
          same ? "bitwise-same" : "DIFFERENT");
      if (n > 1) {
        log_old += std::log(gflop / t_old);
        log_new += std::log(gflop / t_new);
        log_blas += std::log(gflop / t_blas);
        ++points;
      }
    }
  }
  if (points > 0) {
    std::printf(
        "geomean over n > 1: old %.1f new %.1f blas %.1f GFLOP/s  new/old %.2f new/blas %.2f  %s\n",
        std::exp(log_old / points), std::exp(log_new / points), std::exp(log_blas / points),
        std::exp((log_new - log_old) / points), std::exp((log_new - log_blas) / points),
        all_same ? "all bitwise-same" : "SOME DIFFERENT");
  }
  return all_same ? 0 : 1;
}
