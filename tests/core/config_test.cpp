// --set overrides, the strict key reader and the RNG's reproducibility.
#include "aha/core/config.h"

#include <gtest/gtest.h>

#include "aha/core/rng.h"

namespace aha {
namespace {

TEST(Config, OverridesParseJsonOrString) {
  Json c = {{"grpo", {{"beta", 0.04}}}, {"name", "x"}};
  apply_overrides(c, {"grpo.beta=0.001", "grpo.group_size=16", "data.path=a/b.jsonl",
                      "flags=[1,2]", "name=null"});
  EXPECT_DOUBLE_EQ(c["grpo"]["beta"].get<double>(), 0.001);
  EXPECT_EQ(c["grpo"]["group_size"].get<int>(), 16);
  EXPECT_EQ(c["data"]["path"].get<std::string>(), "a/b.jsonl");
  EXPECT_EQ(c["flags"].size(), 2u);
  EXPECT_TRUE(c["name"].is_null());
  EXPECT_THROW(apply_overrides(c, {"novalue"}), Error);
  EXPECT_THROW(apply_overrides(c, {"=3"}), Error);
  EXPECT_THROW(apply_overrides(c, {"flags.x=1"}), Error);
  EXPECT_THROW(apply_overrides(c, {"a..b=1"}), Error);
}

TEST(Config, StrictReaderRejectsUnknownAndMistyped) {
  Json c = {{"lr", 1e-3}, {"steps", 10}, {"typo", 1}};
  StrictReader r(c, "train");
  EXPECT_DOUBLE_EQ(r.get<double>("lr", 0.0), 1e-3);
  EXPECT_EQ(r.get<int>("steps", 0), 10);
  EXPECT_EQ(r.get<int>("warmup", 5), 5);
  EXPECT_THROW(r.finish(), Error);
  StrictReader r2(Json{{"steps", "ten"}}, "train");
  EXPECT_THROW(r2.get<int>("steps", 0), Error);
  EXPECT_THROW(r2.require<int>("lr"), Error);
}

TEST(Rng, StreamsAreReproducibleAndDistinct) {
  Rng a(42, 0), b(42, 0), c(42, 1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(Rng(42, 0).next_u64(), c.next_u64());
  Rng d(7);
  d.next_u64();
  Rng e(0);
  e.set_state(d.state());
  EXPECT_EQ(d.next_u64(), e.next_u64());
  double sum = 0, sq = 0;
  Rng n(3);
  for (int i = 0; i < 20000; ++i) {
    double x = n.normal();
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / 20000, 0.0, 0.03);
  EXPECT_NEAR(sq / 20000, 1.0, 0.05);
}

}  // namespace
}  // namespace aha
