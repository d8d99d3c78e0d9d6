// `aha bench generate` end to end at a tiny setting: the per-phase breakdown of prefill and
// decode is in the JSON lines and the stderr table. Checks presence and finiteness only, never
// values: no timed tests.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "run_aha.h"

namespace {

using aha::testing::CmdResult;
using aha::testing::run_aha;

bool finite_number(const aha::Json& j, const char* key) {
  return j.contains(key) && j[key].is_number() && std::isfinite(j[key].get<double>());
}

std::vector<aha::Json> json_lines(const std::string& out) {
  std::vector<aha::Json> lines;
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) lines.push_back(aha::Json::parse(line));
  }
  return lines;
}

TEST(BenchGenerateCli, PrintsPrefillAndDecodePhasesWithFiniteFigures) {
  CmdResult r = run_aha(
      "bench generate --preset tiny --batch 1,3 --prompt-len 4 --new-tokens 3 --threads 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<aha::Json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;  // one line per batch size
  for (const aha::Json& j : lines) {
    EXPECT_EQ(j["bench"], "generate");
    for (const char* key : {"prefill_tokens_per_s", "decode_tokens_per_s", "roof_gflops"}) {
      EXPECT_TRUE(finite_number(j, key)) << key << ": " << j.dump();
    }
    ASSERT_TRUE(j.contains("phases")) << j.dump();
    for (const char* phase : {"prefill", "decode", "attention", "moe_mlp", "block_other",
                              "lm_head", "sampling_other"}) {
      ASSERT_TRUE(j["phases"].contains(phase)) << phase << ": " << j.dump();
      const aha::Json& p = j["phases"][phase];
      for (const char* key : {"s", "gflop", "gflops", "pct_of_roof"}) {
        EXPECT_TRUE(finite_number(p, key)) << phase << "." << key << ": " << j.dump();
      }
      EXPECT_GE(p["s"].get<double>(), 0.0) << phase;
      EXPECT_NE(r.err.find(std::string("  ") + phase + " "), std::string::npos) << r.err;
    }
    for (const char* phase : {"prefill", "decode", "attention", "moe_mlp", "lm_head"}) {
      EXPECT_GT(j["phases"][phase]["gflop"].get<double>(), 0.0) << phase;
    }
    EXPECT_TRUE(finite_number(j["phases"]["attention"], "share_of_decode")) << j.dump();
  }
}

}  // namespace
