// `aha bench train` end to end at a tiny setting: the per-phase breakdown (forward, backward,
// optimizer, LM head) is in the JSON line and the stderr table. Checks presence and finiteness
// only, never values: no timed tests.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "aha/core/config.h"
#include "bench_json.h"
#include "run_aha.h"

namespace {

using aha::testing::CmdResult;
using aha::testing::finite_number;
using aha::testing::run_aha;

TEST(BenchTrainCli, PrintsEveryPhaseWithFiniteFigures) {
  CmdResult r = run_aha("bench train --preset small --iters 1 --batch 1 --seq-len 8 --threads 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  aha::Json j = aha::Json::parse(r.out);  // one point: exactly one JSON line
  EXPECT_EQ(j["bench"], "train");
  for (const char* key : {"tokens_per_s", "step_s", "gflops", "gemm_peak_gflops", "roof_gflops"}) {
    EXPECT_TRUE(finite_number(j, key)) << key << ": " << r.out;
  }
  ASSERT_TRUE(j.contains("phases")) << r.out;
  for (const char* phase : {"forward", "backward", "optimizer", "lm_head"}) {
    ASSERT_TRUE(j["phases"].contains(phase)) << phase << ": " << r.out;
    const aha::Json& p = j["phases"][phase];
    for (const char* key : {"s", "gflop", "gflops", "pct_of_roof"}) {
      EXPECT_TRUE(finite_number(p, key)) << phase << "." << key << ": " << r.out;
    }
    EXPECT_GT(p["gflop"].get<double>(), 0.0) << phase;
    // The human-readable table on stderr names each phase.
    EXPECT_NE(r.err.find(std::string("  ") + phase + " "), std::string::npos) << r.err;
  }
}

}  // namespace
