// `aha bench generate` end to end at a tiny setting: the per-phase breakdown of prefill and
// decode is in the JSON lines and the stderr table. Checks presence and finiteness only, never
// values: no timed tests.
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

TEST(BenchGenerateCli, PrintsPrefillAndDecodePhasesWithFiniteFigures) {
  CmdResult r = run_aha(
      "bench generate --preset tiny --batch 1,3 --prompt-len 4 --new-tokens 3 --threads 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<aha::Json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;  // one line per batch size
  for (const aha::Json& j : lines) {
    EXPECT_EQ(j["bench"], "generate");
    for (const char* key :
         {"prefill_tokens_per_s", "decode_tokens_per_s", "roof_gflops", "peak_rss_mb"}) {
      EXPECT_TRUE(finite_number(j, key)) << key << ": " << j.dump();
    }
    EXPECT_GT(j["peak_rss_mb"].get<double>(), 1.0) << j.dump();
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
    for (const char* key :
         {"decode_weight_mb_per_step", "decode_cache_mb_per_step", "decode_read_gbps"}) {
      EXPECT_TRUE(finite_number(j, key)) << key << ": " << j.dump();
      EXPECT_GT(j[key].get<double>(), 0.0) << key;
    }
    // Every sequence's cache rows at the decode's mean context (4 + 3 / 2 tokens).
    const double cache_mb = double(j["batch"].get<int64_t>()) * 5.5 *
                            double(j["cache_bytes_per_token"].get<int64_t>()) / 1e6;
    EXPECT_NEAR(j["decode_cache_mb_per_step"].get<double>(), cache_mb, 1e-9 * cache_mb);
    EXPECT_NE(r.err.find("decode reads ~"), std::string::npos) << r.err;
  }
  // A batch of 3 touches at least the weights a batch of 1 does (more routed experts).
  EXPECT_GE(lines[1]["decode_weight_mb_per_step"].get<double>(),
            lines[0]["decode_weight_mb_per_step"].get<double>());
}

// --speculative adds the MTP-drafted decode beside the plain one (fields only, never values).
TEST(BenchGenerateCli, SpeculativeReportsKeepRateAndRatio) {
  CmdResult r = run_aha(
      "bench generate --preset tiny --batch 2 --prompt-len 4 --new-tokens 4 --threads 1 "
      "--speculative");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<aha::Json> lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  ASSERT_TRUE(lines[0].contains("speculative")) << r.out;
  const aha::Json& s = lines[0]["speculative"];
  for (const char* key : {"decode_tokens_per_s", "kept", "vs_plain"}) {
    EXPECT_TRUE(finite_number(s, key)) << key << ": " << s.dump();
  }
  EXPECT_GT(s["drafts"].get<int64_t>(), 0) << s.dump();
  EXPECT_NE(r.err.find("speculative:"), std::string::npos) << r.err;
  // A model kind without MTP support is one error line naming the key.
  CmdResult bad = run_aha("bench generate --preset tiny-nsa --batch 1 --new-tokens 3 --speculative");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("num_nextn_predict_layers"), std::string::npos) << bad.err;
}

}  // namespace
