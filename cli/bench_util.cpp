// Shared pieces of the `aha bench` subcommands (cli/bench.h).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>

#include "aha/core/rng.h"
#include "aha/core/tensor.h"
#include "bench.h"

namespace aha::cli {

double gemm_gflops(int64_t m, int64_t n, int64_t k, int repeats) {
  std::vector<float> x(m * k), w(n * k), y(m * n);
  Rng rng(1);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  for (auto& v : w) v = static_cast<float>(rng.normal());
  // Warm for 0.3 s first: a core that was idle takes a while to join (TBB's sleeping worker, its
  // clock ramping up), so a cold best-of-5 at 512^3 timed about one core (96 GFLOP/s against
  // 200-206 warm on the 2-core EPYC; 50 ms of warming was not enough).
  const auto warm = BenchClock::now();
  do {
    gemm_xwt(x.data(), w.data(), static_cast<const float*>(nullptr), y.data(), m, k, n);
  } while (seconds_since(warm) < 0.3);
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = BenchClock::now();
    gemm_xwt(x.data(), w.data(), static_cast<const float*>(nullptr), y.data(), m, k, n);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * m * n * k / best / 1e9;
}

double gemm_roof_gflops() {
  // Best of 10 each: a 1024^3 product alone is a few ms, and one slow sitting on a shared
  // machine put a training step's phases above a best-of-3 roof.
  double roof = 0;
  for (int64_t n : {256, 512, 1024}) roof = std::max(roof, gemm_gflops(n, n, n, 10));
  return roof;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

Json phase_json(const Phase& p, double roof) {
  return {{"s", p.seconds},
          {"gflop", p.flops / 1e9},
          {"gflops", p.gflops()},
          {"pct_of_roof", 100.0 * p.gflops() / roof}};
}

void print_phase_table(const std::string& title, const std::vector<Phase>& phases, double roof) {
  std::fprintf(stderr, "%s\n", title.c_str());
  std::fprintf(stderr, "  %-16s %10s %10s %10s %8s\n", "phase", "ms", "GFLOP", "GFLOP/s", "% roof");
  for (const Phase& p : phases) {
    std::fprintf(stderr, "  %-16s %10.2f %10.3f %10.1f %7.1f%%\n", p.name.c_str(), 1e3 * p.seconds,
                 p.flops / 1e9, p.gflops(), 100.0 * p.gflops() / roof);
  }
}

}  // namespace aha::cli
