// GRPO losses and gradients against PyTorch autograd (tests/reference/gen_grpo_loss.py), and
// advantage edge cases.
#include <gtest/gtest.h>

#include <cmath>

#include "aha/core/config.h"
#include "aha/grpo/advantages.h"
#include "aha/grpo/loss.h"

namespace aha::grpo {
namespace {

TEST(GrpoLoss, MatchesAutogradReference) {
  Json cases = load_json_file(std::string(AHA_TEST_DATA_DIR) + "/grpo_loss_cases.json");
  ASSERT_EQ(cases.size(), 144u);  // 120 clip cases, then CISPO, SAPO and GMPO
  int per_policy[4] = {0, 0, 0, 0};
  for (const Json& c : cases) {
    const Json& k = c["config"];
    LossConfig cfg;
    cfg.level = LossConfig::parse_level(k["level"]);
    cfg.agg = LossConfig::parse_agg(k["agg"]);
    cfg.beta = k["beta"];
    cfg.kl = LossConfig::parse_kl(k["kl"]);
    cfg.eps_low = k["eps_low"];
    cfg.eps_high = k["eps_high"];
    cfg.dual_clip = k["dual_clip"];
    cfg.max_completion_len = k["max_len"];
    cfg.offpolicy_delta = k["offpolicy_delta"];
    cfg.policy = LossConfig::parse_policy(k.value("policy", "clip"));
    cfg.sapo_tau_pos = k.value("tau_pos", 1.0);
    cfg.sapo_tau_neg = k.value("tau_neg", 1.05);
    ++per_policy[static_cast<int>(cfg.policy)];
    const size_t n_seq = c["logp"].size();
    std::vector<std::vector<float>> logp(n_seq), old(n_seq), ref(n_seq);
    std::vector<std::vector<double>> adv(n_seq);
    std::vector<SeqTerms> seqs(n_seq);
    for (size_t i = 0; i < n_seq; ++i) {
      logp[i] = c["logp"][i].get<std::vector<float>>();
      old[i] = c["old"][i].get<std::vector<float>>();
      ref[i] = c["ref"][i].get<std::vector<float>>();
      adv[i].assign(logp[i].size(), c["adv"][i].get<double>());
      seqs[i] = {logp[i].data(), old[i].data(), ref[i].data(), adv[i].data(),
                 static_cast<int64_t>(logp[i].size())};
    }
    std::vector<std::vector<double>> grad, dent;
    LossMetrics m = grpo_loss(seqs, cfg, grad, dent);
    const std::string what = k.dump();
    EXPECT_NEAR(m.loss, c["loss"].get<double>(), 2e-5 * (1 + std::abs(m.loss))) << what;
    for (size_t i = 0; i < n_seq; ++i) {
      for (size_t t = 0; t < logp[i].size(); ++t) {
        double want = c["grad"][i][t];
        EXPECT_NEAR(grad[i][t], want, 2e-5 * (1 + std::abs(want))) << what << " " << i << "," << t;
      }
    }
  }
  EXPECT_EQ(per_policy[0], 120);
  EXPECT_EQ(per_policy[1], 6);
  EXPECT_EQ(per_policy[2], 12);
  EXPECT_EQ(per_policy[3], 6);
}

// The entropy bonus: loss -= coef * H aggregated like the tokens; d loss / d H = -coef * weight,
// and the policy gradient is untouched.
TEST(GrpoLoss, EntropyBonusTermAndGradient) {
  std::vector<float> lp1 = {-1.0f, -2.0f, -0.5f}, old1 = {-1.1f, -1.8f, -0.5f}, h1 = {2.0f, 1.0f, 0.5f};
  std::vector<float> lp2 = {-0.3f}, old2 = {-0.2f}, h2 = {3.0f};
  std::vector<double> a1(3, 1.5), a2(1, -0.5);
  std::vector<SeqTerms> s = {{lp1.data(), old1.data(), nullptr, a1.data(), 3, h1.data()},
                             {lp2.data(), old2.data(), nullptr, a2.data(), 1, h2.data()}};
  for (const char* agg : {"token-mean", "seq-mean-token-mean"}) {
    LossConfig base;
    base.agg = LossConfig::parse_agg(agg);
    LossConfig bonus = base;
    bonus.entropy_coef = 0.01;
    std::vector<std::vector<double>> g0, e0, g1, e1;
    const LossMetrics m0 = grpo_loss(s, base, g0, e0);
    const LossMetrics m1 = grpo_loss(s, bonus, g1, e1);
    const bool tok = std::string(agg) == "token-mean";
    const double w1 = tok ? 0.25 : 1.0 / 6, w2 = tok ? 0.25 : 0.5;  // weights of seq 1, seq 2
    const double mean_h = w1 * (2.0 + 1.0 + 0.5) + w2 * 3.0;
    EXPECT_NEAR(m1.loss, m0.loss - 0.01 * mean_h, 1e-12) << agg;
    EXPECT_NEAR(m1.entropy, mean_h, 1e-12) << agg;
    EXPECT_EQ(g0, g1) << agg;
    for (double d : e0[0]) EXPECT_EQ(d, 0.0);
    for (double d : e1[0]) EXPECT_NEAR(d, -0.01 * w1, 1e-15) << agg;
    EXPECT_NEAR(e1[1][0], -0.01 * w2, 1e-15) << agg;
  }
}

// IS weights scale each token's policy term (value and gradient), never the KL term.
TEST(GrpoLoss, ImportanceWeightsScaleThePolicyTermOnly) {
  std::vector<float> lp = {-1.0f, -2.0f, -0.7f}, old = {-1.2f, -1.9f, -0.7f}, ref = {-1.1f, -2.2f, -0.6f};
  std::vector<float> w = {0.5f, 2.0f, 0.0f};
  std::vector<double> a(3, 0.8);
  for (const char* policy : {"clip", "cispo", "sapo", "gmpo"}) {
    LossConfig cfg;
    cfg.policy = LossConfig::parse_policy(policy);
    cfg.beta = 0.1;
    std::vector<SeqTerms> plain = {{lp.data(), old.data(), ref.data(), a.data(), 3}};
    std::vector<SeqTerms> weighted = plain;
    weighted[0].is_weight = w.data();
    LossConfig no_kl = cfg;
    no_kl.beta = 0;
    std::vector<std::vector<double>> g_pg, g_w, g_plain, d;
    grpo_loss(plain, no_kl, g_pg, d);   // policy term alone
    grpo_loss(plain, cfg, g_plain, d);  // + KL
    grpo_loss(weighted, cfg, g_w, d);
    for (int t = 0; t < 3; ++t) {
      const double kl_part = g_plain[0][t] - g_pg[0][t];
      // GMPO's gradient of token t is the sequence term's, weighted by t's own IS weight.
      EXPECT_NEAR(g_w[0][t], w[t] * g_pg[0][t] + kl_part, 1e-12) << policy << " " << t;
    }
  }
}

TEST(GrpoLoss, ClipMetricsAndOnPolicyGradient) {
  // On-policy (ratio 1) with no KL: the gradient is -A * weight, nothing clipped.
  std::vector<float> lp = {-1.0f, -2.0f}, old = lp;
  std::vector<double> a = {2.0, 2.0};
  std::vector<SeqTerms> s = {{lp.data(), old.data(), nullptr, a.data(), 2}};
  std::vector<std::vector<double>> g, dent;
  LossMetrics m = grpo_loss(s, LossConfig{}, g, dent);
  EXPECT_DOUBLE_EQ(g[0][0], -1.0);
  EXPECT_DOUBLE_EQ(m.loss, -2.0);
  EXPECT_EQ(m.clip_high_frac, 0.0);
  // Far off-policy up with a positive advantage: clipped, no gradient.
  std::vector<float> up = {0.0f, 0.0f};
  s[0].logp = up.data();
  m = grpo_loss(s, LossConfig{}, g, dent);
  EXPECT_EQ(m.clip_high_frac, 1.0);
  EXPECT_EQ(g[0][0], 0.0);
}

TEST(Advantages, GroupEdgeCases) {
  AdvantageConfig cfg;
  // Two groups; a group of one and a group of equal rewards carry no signal.
  auto a = compute_advantages({1, 0, 1, 0, 5, 3, 3}, {0, 0, 0, 0, 1, 2, 2}, cfg);
  double sd = std::sqrt(1.0 / 3.0);  // unbiased std of {1,0,1,0}
  EXPECT_NEAR(a[0], 0.5 / (sd + 1e-4), 1e-9);
  EXPECT_NEAR(a[1], -0.5 / (sd + 1e-4), 1e-9);
  EXPECT_EQ(a[4], 0.0);
  EXPECT_EQ(a[5], 0.0);
  EXPECT_EQ(a[6], 0.0);
  // NaN rewards are left out and get 0.
  a = compute_advantages({1, NAN, 0}, {0, 0, 0}, cfg);
  EXPECT_EQ(a[1], 0.0);
  EXPECT_NEAR(a[0], 0.5 / (std::sqrt(0.5) + 1e-4), 1e-9);
  cfg.scale = RewardScale::kNone;
  a = compute_advantages({1, 0, 0, 0}, {0, 0, 0, 0}, cfg);
  EXPECT_DOUBLE_EQ(a[0], 0.75);
  cfg.mode = AdvantageMode::kRloo;
  a = compute_advantages({1, 0, 0, 0}, {0, 0, 0, 0}, cfg);
  EXPECT_DOUBLE_EQ(a[0], 1.0);  // 1 - mean(0, 0, 0)
  EXPECT_NEAR(a[1], -1.0 / 3.0, 1e-12);
  cfg.mode = AdvantageMode::kReinforcePP;
  a = compute_advantages({1, 0, 3, 1}, {0, 0, 1, 1}, cfg);
  double mean = 0, ss = 0;
  for (double v : a) mean += v / 4;
  for (double v : a) ss += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 0.0, 1e-12);
  EXPECT_NEAR(std::sqrt(ss / 3), 1.0, 1e-3);
  EXPECT_THROW(AdvantageConfig::parse_mode("ppo"), Error);
}

TEST(Advantages, ProcessSupervisionSumsFollowingSteps) {
  // One group, two completions: steps (end 2: r=1, end 4: r=0) and (end 3: r=0).
  auto adv = process_advantages({{1, 0}, {0}}, {{2, 4}, {3}}, {4, 3}, {0, 0}, 0.0);
  double mean = 1.0 / 3, sd = std::sqrt(((1 - mean) * (1 - mean) + 2 * mean * mean) / 2);
  double hi = (1 - mean) / sd, lo = -mean / sd;
  EXPECT_NEAR(adv[0][0], hi + lo, 1e-12);
  EXPECT_NEAR(adv[0][2], lo, 1e-12);
  EXPECT_NEAR(adv[1][2], lo, 1e-12);
}

}  // namespace
}  // namespace aha::grpo
