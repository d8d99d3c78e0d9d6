// The sampler: filters and greedy choice, its log-sum-exp against the trainer's, extremes and
// top-p order at their edges, and the frequencies it draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "aha/core/rng.h"
#include "aha/policy/layers.h"
#include "aha/rollout/engine.h"

namespace aha::rollout {
namespace {
TEST(Sampling, FiltersAndGreedy) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  std::vector<float> scratch;
  Rng rng(1);
  SamplingParams p;
  p.temperature = 0;
  TokenSample g = sample_token(logits.data(), 5, p, rng, {}, scratch);
  EXPECT_EQ(g.token, 1);  // ties go to the lower id
  double lse = std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0) + std::exp(-1.0));
  EXPECT_NEAR(g.policy_logprob, 3.0 - lse, 1e-6);
  p.temperature = 1.0;
  p.top_k = 2;
  for (int i = 0; i < 50; ++i) {
    TokenSample s = sample_token(logits.data(), 5, p, rng, {}, scratch);
    EXPECT_TRUE(s.token == 1 || s.token == 3);
    EXPECT_NEAR(s.logprob, std::log(0.5), 1e-6);
    EXPECT_EQ(s.n_kept, 2);
    EXPECT_EQ(s.kept_min_logit, 3.0f);
  }
  p.top_k = 0;
  p.top_p = 0.5;  // the two 3.0 logits hold 0.78 of the mass: both kept, the first alone is 0.39
  EXPECT_EQ(sample_token(logits.data(), 5, p, rng, {}, scratch).n_kept, 2);
  p.top_p = 1.0;
  p.min_p = 0.3;  // keeps p >= 0.3 * p_max: exp(2-3) = 0.37 passes, exp(1-3) = 0.14 does not
  EXPECT_EQ(sample_token(logits.data(), 5, p, rng, {}, scratch).n_kept, 3);
  p.min_p = 0;
  p.repetition_penalty = 100.0;
  p.temperature = 0;
  EXPECT_EQ(sample_token(logits.data(), 5, p, rng, {1, 3, 1}, scratch).token, 2);
  SamplingParams bad;
  bad.top_p = 0;
  EXPECT_THROW(bad.validate(), Error);
}

TEST(Sampling, LogSumExpTakesTheMaxOfTheWholeRow) {
  // 2,053 logits (8-lane blocks and a tail of 5) at temperature 0.5: the peak sits in the tail,
  // then in a block. At 2,000 a max that missed it would overflow the exponentials.
  for (int peak : {2050, 1000}) {
    std::vector<float> z(2053);
    for (size_t i = 0; i < z.size(); ++i) z[i] = static_cast<float>(std::sin(0.37 * i));
    z[peak] = 2000.0f;
    z[7] = -std::numeric_limits<float>::infinity();
    double mx = 4000.0, sum = 0;
    for (float v : z) sum += std::exp(double(v) * 2.0 - mx);
    EXPECT_NEAR(log_sum_exp(z.data(), static_cast<int>(z.size()), 2.0), mx + std::log(sum), 1e-9)
        << "peak at " << peak;
  }
}

// The sampler's log-sum-exp and the trainer's (policy::logprob_forward's row statistics) sum
// the same exponentials in one order, so one row gives one lse to the bit: at every vocabulary
// size around LaneSum's 8 lanes and the 256-value blocks, and at temperatures other than 1. The
// trainer's logits are the row itself (an identity LM head, exact in double).
TEST(Sampling, SamplerAndTrainerGiveOneLse) {
  Rng rng(23);
  for (int vocab : {1, 7, 8, 9, 63, 255, 256, 257, 300, 515}) {
    std::vector<float> z(vocab);
    for (float& v : z) v = static_cast<float>(6.0 * rng.normal());
    std::vector<double> h(z.begin(), z.end()), eye(size_t(vocab) * vocab, 0.0);
    for (int j = 0; j < vocab; ++j) eye[size_t(j) * vocab + j] = 1.0;
    for (double temperature : {1.0, 0.7}) {
      const int32_t target = vocab - 1;
      double logprob = 0, entropy = 0, lse = 0;
      policy::logprob_forward(h.data(), eye.data(), &target, &logprob, &entropy, &lse, 1, vocab,
                              vocab, temperature, nullptr);
      EXPECT_EQ(lse, log_sum_exp(z.data(), vocab, 1.0 / temperature))
          << "vocab " << vocab << " temperature " << temperature;
    }
  }
}

// At temperature 1 on the raw row the sampler takes the policy's log-sum-exp from its own
// exponentials: it must be log_sum_exp's to the bit, and so under every other setting, in
// sample_token and sampling_dist alike.
TEST(Sampling, PolicyLogprobIsTheRawRowsLogSumExp) {
  Rng rng(29);
  std::vector<float> scratch;
  for (int vocab : {5, 16, 37, 2051}) {
    std::vector<float> logits(vocab);
    for (float& v : logits) v = static_cast<float>(4.0 * rng.normal());
    const double lse = log_sum_exp(logits.data(), vocab, 1.0);
    for (int setting = 0; setting < 6; ++setting) {
      SamplingParams p;
      p.temperature = setting == 1 ? 0.6 : setting == 5 ? 0.0 : 1.0;
      if (setting == 2) p.top_p = 0.9;
      if (setting == 3) p.top_k = 3;
      if (setting == 4) p.repetition_penalty = 1.3;
      const std::vector<int32_t> history = {0, 1, 2};
      const std::string at = "vocab " + std::to_string(vocab) + " setting " + std::to_string(setting);
      for (int draw = 0; draw < 4; ++draw) {
        const TokenSample t = sample_token(logits.data(), vocab, p, rng, history, scratch);
        EXPECT_EQ(t.policy_logprob, static_cast<float>(logits[t.token] - lse)) << at;
      }
      SamplingDist d;
      sampling_dist(logits.data(), vocab, p, history, scratch, d);
      EXPECT_EQ(d.policy_lse, lse) << at;
    }
  }
}

// The sampler finds the largest and smallest logit 16 lanes at a time: it must name the ones
// std::max_element and std::min_element name (the first of ties, -0 against +0 included), at
// every length and place, and with a NaN in the row.
TEST(Sampling, ExtremesAreTheFirstOfTheirTies) {
  Rng rng(17);
  std::vector<float> scratch;
  SamplingParams greedy;
  greedy.temperature = 0.0;
  const SamplingParams plain;
  for (int n : {1, 2, 15, 16, 17, 31, 32, 33, 47, 64, 100, 2053}) {
    for (int trial = 0; trial < 24; ++trial) {
      std::vector<float> z(n);
      // Few distinct values, so ties are common; zeros of both signs.
      for (float& v : z) v = static_cast<float>(static_cast<int>(rng.uniform() * 5) - 2);
      for (float& v : z) {
        if (v == 0.0f && rng.uniform() < 0.5) v = -0.0f;
      }
      if (trial % 3 == 1) z[static_cast<size_t>(rng.uniform() * n)] = 7.0f;
      if (trial % 3 == 2) z[static_cast<size_t>(rng.uniform() * n)] = -7.0f;
      if (trial % 8 == 7) z[static_cast<size_t>(rng.uniform() * n)] = std::nanf("");
      const std::string at = "n " + std::to_string(n) + " trial " + std::to_string(trial);
      const auto top = std::max_element(z.begin(), z.end()) - z.begin();
      EXPECT_EQ(sample_token(z.data(), n, greedy, rng, {}, scratch).token, top) << at;
      if (std::any_of(z.begin(), z.end(), [](float v) { return std::isnan(v); })) continue;
      const float low = *std::min_element(z.begin(), z.end());
      const float got = sample_token(z.data(), n, plain, rng, {}, scratch).kept_min_logit;
      EXPECT_EQ(std::signbit(got), std::signbit(low)) << at;
      EXPECT_EQ(got, low) << at;
    }
  }
}

// Top-p keeps a prefix of the ids sorted by descending logit, ties to the lower id (-0 and +0
// equal): every kept id outranks every dropped one. Rows with few distinct values (ties, both
// zeros), rows spread over many magnitudes and both signs (every byte of the sort keys varies),
// and rows of values a few ulps apart (only the low bytes do).
TEST(Sampling, TopPKeepsThePrefixOfTheSortedOrder) {
  Rng rng(31);
  std::vector<float> scratch;
  for (int n : {3, 17, 256, 2053}) {
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<float> z(n);
      for (float& v : z) {
        if (trial % 3 == 0) {
          v = static_cast<float>(static_cast<int>(rng.uniform() * 7) - 3) * 0.5f;
        } else if (trial % 3 == 1) {
          v = static_cast<float>(rng.normal() * std::exp(4.0 * rng.normal()));
        } else {  // values a few ulps apart: only the keys' low bytes differ
          uint32_t u;
          const float one = 1.0f;
          std::memcpy(&u, &one, sizeof(u));
          u += static_cast<uint32_t>(rng.uniform() * 600);
          std::memcpy(&v, &u, sizeof(v));
        }
        if (v == 0.0f && rng.uniform() < 0.5) v = -0.0f;
      }
      auto outranks = [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
      SamplingParams p;
      p.top_p = 0.3 + 0.05 * trial;
      std::vector<int32_t> kept;
      const TokenSample t = sample_token(z.data(), n, p, rng, {}, scratch, &kept);
      const std::string at = "n " + std::to_string(n) + " trial " + std::to_string(trial);
      if (kept.empty()) {  // nothing cut
        EXPECT_EQ(t.n_kept, n) << at;
        continue;
      }
      ASSERT_EQ(static_cast<int>(kept.size()), t.n_kept) << at;
      EXPECT_TRUE(std::binary_search(kept.begin(), kept.end(), t.token)) << at;
      std::vector<char> in(n, 0);
      for (int32_t id : kept) in[id] = 1;
      int32_t weakest_kept = kept[0];
      for (int32_t id : kept) weakest_kept = outranks(weakest_kept, id) ? id : weakest_kept;
      EXPECT_EQ(z[weakest_kept], t.kept_min_logit) << at;
      for (int32_t id = 0; id < n; ++id) {
        if (!in[id]) {
          EXPECT_TRUE(outranks(weakest_kept, id)) << at << " dropped " << id;
        }
      }
    }
  }
}

TEST(Sampling, FrequenciesFollowTheDistribution) {
  std::vector<float> logits = {0.0f, 1.0f, 2.0f, -0.5f};
  std::vector<float> scratch;
  Rng rng(3);
  SamplingParams p;
  p.temperature = 0.8;
  std::vector<int> counts(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++counts[sample_token(logits.data(), 4, p, rng, {}, scratch).token];
  double z = 0;
  for (float l : logits) z += std::exp(l / 0.8);
  for (int i = 0; i < 4; ++i) {
    double want = std::exp(logits[i] / 0.8) / z;
    EXPECT_NEAR(counts[i] / double(n), want, 4 * std::sqrt(want * (1 - want) / n) + 1e-3) << i;
  }
}

}  // namespace
}  // namespace aha::rollout
