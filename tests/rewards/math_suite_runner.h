// The runner of the math suite tables (math_suite_test.cpp, math_suite_kinds_test.cpp): every
// case goes through the whole check (gold extraction, candidates, equivalence), fed as
// "The final answer is $\boxed{PRED}$." and/or as a raw completion; every verdict must match
// and every case must be decided in under a second.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <span>
#include <string>

#include "aha/rewards/math.h"

namespace aha::rewards::suite {

enum Mode { kAny, kRaw, kBoxed };  // which wrappings a case is fed in
inline constexpr bool Y = true;
inline constexpr bool N = false;

struct SuiteCase {
  const char* gold;
  const char* pred;
  bool equal;
  Mode mode;
};

inline std::string boxed(const char* pred) {
  return std::string("The final answer is $\\boxed{") + pred + "}$.";
}

inline std::string explain(const std::string& completion, const char* gold) {
  MathCheck c = check_math(completion, gold, MathOptions{}, ExtractOptions{});
  return "gold \"" + c.gold + "\" extracted \"" + c.extracted.text + "\" (" +
         answer_source_name(c.extracted.source) + ") -> " + verdict_name(c.verdict);
}

// Runs every case of the wrapping; counts agreements and false positives.
inline void run_suite(std::span<const SuiteCase> cases, bool wrap_boxed, const char* name) {
  int agree = 0, total = 0, false_pos = 0, unequal = 0;
  double slowest_ms = 0;
  for (const auto& c : cases) {
    if (c.mode == (wrap_boxed ? kRaw : kBoxed)) continue;
    std::string completion = wrap_boxed ? boxed(c.pred) : std::string(c.pred);
    auto t0 = std::chrono::steady_clock::now();
    MathCheck check = check_math(completion, c.gold, MathOptions{}, ExtractOptions{});
    bool got = check.verdict == MathVerdict::kEqual;
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    slowest_ms = std::max(slowest_ms, ms);
    ++total;
    unequal += !c.equal;
    false_pos += got && !c.equal;
    if (got == c.equal) {
      ++agree;
    } else {
      ADD_FAILURE() << (c.equal ? "missed: " : "false positive: ") << "pred \"" << c.pred
                    << "\" gold \"" << c.gold << "\": " << explain(completion, c.gold);
    }
  }
  std::printf("[%s] %s: %d/%d agree, %d false positives of %d unequal pairs, "
              "slowest case %.2f ms\n",
              name, wrap_boxed ? "boxed" : "raw", agree, total, false_pos, unequal, slowest_ms);
  EXPECT_LT(slowest_ms, 1000.0);  // every case decided in under a second
}

}  // namespace aha::rewards::suite
