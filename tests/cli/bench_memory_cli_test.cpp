// `aha bench memory` end to end on a small buffer: one JSON line per thread count with a finite
// rate, and bad options as one error line naming the option. Never checks values: no timed tests.
#include <gtest/gtest.h>

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

TEST(BenchMemoryCli, PrintsAReadRatePerThreadCount) {
  CmdResult r = run_aha("bench memory --mb 8 --threads 1,2 --repeats 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<aha::Json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const aha::Json& j : lines) {
    EXPECT_EQ(j["bench"], "memory");
    EXPECT_EQ(j["mb"], 8);
    EXPECT_TRUE(finite_number(j, "read_gbps")) << j.dump();
    EXPECT_GT(j["read_gbps"].get<double>(), 0.0) << j.dump();
  }
  EXPECT_EQ(lines[0]["threads"], 1);
  EXPECT_NE(r.err.find("memory read"), std::string::npos) << r.err;
}

// The default thread list is 0, all cores: it once failed the positive-integer check.
TEST(BenchMemoryCli, DefaultThreadsRunOnAllCores) {
  CmdResult r = run_aha("bench memory --mb 8 --repeats 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<aha::Json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_GE(lines[0]["threads"].get<int>(), 1) << lines[0].dump();
}

TEST(BenchMemoryCli, BadOptionsAreOneErrorLine) {
  for (const char* args : {"bench memory --mb 0", "bench memory --repeats 0",
                           "bench memory --mb 8 --threads -1", "bench memory --threads x"}) {
    CmdResult r = run_aha(args);
    EXPECT_NE(r.rc, 0) << args;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
  }
}

}  // namespace
