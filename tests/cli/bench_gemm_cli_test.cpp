// `aha bench gemm --shapes model` end to end at a tiny setting: aha's and the direct BLAS's
// figures and their ratio per shape and op, and a summary line. Checks presence and finiteness
// only, never values: no timed tests.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "bench_json.h"
#include "run_aha.h"

namespace {

using aha::testing::CmdResult;
using aha::testing::finite_number;
using aha::testing::json_lines;
using aha::testing::run_aha;

TEST(BenchGemmCli, ModelShapesPrintAhaAndBlasFiguresAndASummary) {
  CmdResult r = run_aha(
      "bench gemm --shapes model --tokens 32 --dims 64 --rounds 1 --min-time 0 --threads 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<aha::Json> lines = json_lines(r.out);
  ASSERT_GE(lines.size(), 3u) << r.out;
  int points = 0;
  for (const aha::Json& j : lines) {
    EXPECT_EQ(j["bench"], "gemm");
    if (j.contains("summary")) {
      for (const char* key : {"geomean_ratio", "min_ratio", "time_ratio"}) {
        EXPECT_TRUE(finite_number(j, key)) << key << ": " << j.dump();
      }
      continue;
    }
    ++points;
    EXPECT_TRUE(finite_number(j, "aha_gflops")) << j.dump();
    // The direct BLAS exists only in builds with OpenBLAS; Eigen builds print null.
    if (j["kernel"] == "openblas") {
      EXPECT_TRUE(finite_number(j, "blas_gflops")) << j.dump();
      EXPECT_TRUE(finite_number(j, "ratio")) << j.dump();
    } else {
      EXPECT_TRUE(j["ratio"].is_null()) << j.dump();
    }
  }
  // Every shape has a linear layer's three GEMMs.
  EXPECT_EQ(points % 3, 0) << r.out;
  EXPECT_GE(points, 3 * 3) << r.out;
}

}  // namespace
