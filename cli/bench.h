// What the `aha bench` subcommands share: wall-clock timing, aha's GEMM roof, and the per-phase
// rows (time, GFLOP, GFLOP/s, share of the roof) of `bench train` and `bench generate`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "commands.h"

namespace aha::cli {

using BenchClock = std::chrono::steady_clock;

inline double seconds_since(BenchClock::time_point t0) {
  return std::chrono::duration<double>(BenchClock::now() - t0).count();
}

// Best-of-repeats GFLOP/s of y[m, n] = x[m, k] w[n, k]^T through aha's gemm_xwt.
double gemm_gflops(int64_t m, int64_t n, int64_t k, int repeats);

// The roof of the per-phase rows: aha's best square GEMM at the current matmul precision, over
// 256^3, 512^3 and 1024^3, best of 10 each, measured in this process.
double gemm_roof_gflops();

// Peak resident set of the process so far, MB.
double peak_rss_mb();

// One timed phase: wall time (best over iterations, or a sum; the caller says) and FLOP count.
struct Phase {
  std::string name;
  double seconds = 1e30;
  double flops = 0;
  double gflops() const { return seconds > 0 ? flops / seconds / 1e9 : 0.0; }
};

// {"s", "gflop", "gflops", "pct_of_roof"}.
Json phase_json(const Phase& p, double roof);

// The phases as a table on stderr under `title` (stdout stays JSON lines).
void print_phase_table(const std::string& title, const std::vector<Phase>& phases, double roof);

// `aha bench gemm` (dispatched by cmd_bench).
int bench_gemm(const Args& args);

// `aha bench memory` (dispatched by cmd_bench): read bandwidth, cmd_bench_memory.cpp.
int bench_memory(const Args& args);

}  // namespace aha::cli
