// `aha bench memory`: how fast this machine reads memory, the roof of the phases that stream
// more bytes than they compute on (batched decode reads every weight and every cached row once a
// step). `aha bench generate` prints the bytes a decode step streams and their rate beside it.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <new>
#include <vector>

#include "aha/core/threading.h"
#include "bench.h"
#include "options.h"

namespace aha::cli {

namespace {

volatile float g_sink = 0;

// 64 running sums per task (four 64-byte lines a step, independent), so that the loads, not the
// adds' latency, bound the loop: with 16 a core read 18 GB/s where 64 read 29 on the 2-core EPYC.
float sum_block(const float* a, int64_t n) {
  constexpr int kL = 64;
  float acc[kL] = {};
  int64_t i = 0;
  for (; i + kL <= n; i += kL) {
    for (int l = 0; l < kL; ++l) acc[l] += a[i + l];
  }
  for (; i < n; ++i) acc[0] += a[i];
  float s = 0;
  for (float v : acc) s += v;
  return s;
}

// Seconds for one read of a[0, n) split evenly over the current thread limit (one block each).
double read_seconds(const float* a, int64_t n, float& sink) {
  const int threads = max_threads();
  const int64_t block = (n + threads - 1) / threads;
  std::vector<float> part(threads, 0.0f);
  const auto t0 = BenchClock::now();
  tbb::parallel_for(
      tbb::blocked_range<int>(0, threads, 1),
      [&](const tbb::blocked_range<int>& r) {
        for (int t = r.begin(); t < r.end(); ++t) {
          const int64_t i0 = std::min(n, t * block), i1 = std::min(n, i0 + block);
          part[t] = sum_block(a + i0, i1 - i0);
        }
      },
      tbb::static_partitioner());
  const double s = seconds_since(t0);
  for (float v : part) sink += v;
  return s;
}

}  // namespace

int bench_memory(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string thread_list;
  int64_t mb = 512;
  int repeats = 5;
  desc.add_options()("mb", po::value(&mb)->default_value(512),
                     "buffer size in MiB (well above the last-level cache)")(
      "threads", po::value(&thread_list)->default_value("0"),
      "thread counts (list; 0 = all cores)")(
      "repeats", po::value(&repeats)->default_value(5), "timed reads per point (best is kept)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha bench memory [--mb 512] [--threads 1,2] [--repeats 5]\n"
                     "Read bandwidth from memory (GB/s, best of the repeats after 0.2 s of\n"
                     "warming), the roof of memory-bound phases such as batched decode;\n"
                     "docs/performance.md.")) {
    return 0;
  }
  if (mb < 1 || mb > (int64_t{1} << 20)) fail("--mb must be in [1, 1048576], got ", mb);
  if (repeats < 1) fail("--repeats must be >= 1, got ", repeats);
  const int64_t n = mb * (int64_t{1} << 20) / int64_t{sizeof(float)};
  // Line-aligned: unaligned 64-byte loads each touch two lines (21 GB/s instead of 28 on one core).
  struct AlignedFree {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<float[], AlignedFree> a(new (std::align_val_t(64)) float[n]);
  // Written once so that every page is mapped before any timing.
  for (int64_t i = 0; i < n; ++i) a[i] = static_cast<float>(i & 1023);
  float sink = 0;
  // 0 is the default: all cores.
  for (int64_t threads : parse_int_list(thread_list, "--threads", 0)) {
    const ThreadLimit limit(static_cast<int>(threads));
    const auto warm = BenchClock::now();
    do {
      read_seconds(a.get(), n, sink);
    } while (seconds_since(warm) < 0.2);
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) best = std::min(best, read_seconds(a.get(), n, sink));
    const double gbps = double(n) * sizeof(float) / best / 1e9;
    std::fprintf(stderr, "memory read  %lld MiB  %d threads  %.1f GB/s\n",
                 static_cast<long long>(mb), max_threads(), gbps);
    std::cout << Json{{"bench", "memory"},
                      {"mb", mb},
                      {"threads", max_threads()},
                      {"read_gbps", gbps}}
                     .dump()
              << std::endl;
  }
  g_sink = sink;  // the sums are used, so no read is optimised away
  return 0;
}

}  // namespace aha::cli
