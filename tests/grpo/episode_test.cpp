// Episodes in GRPO: observation tokens get no gradient (finite differences of the loss with
// respect to their logprobs are exactly zero, and the loss is that of the policy tokens alone);
// the loss mask and the turns survive the rollout file, run.db and export-rollouts; a tool that
// hangs ends its episode with reward 0 and nothing else.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "aha/grpo/loss.h"
#include "aha/grpo/rollouts.h"
#include "aha/grpo/trainer.h"
#include "aha/runlog/run_db.h"
#include "tiny_run.h"

namespace aha::grpo {
namespace {

using namespace testing_tiny;

struct Seq {
  std::vector<float> logp, old_logp, ref_logp, entropy;
  std::vector<double> adv;
  std::vector<uint8_t> mask;
  SeqTerms terms(bool with_mask) const {
    SeqTerms s;
    s.logp = logp.data();
    s.old_logp = old_logp.data();
    s.ref_logp = ref_logp.data();
    s.advantage = adv.data();
    s.entropy = entropy.data();
    s.n = static_cast<int64_t>(logp.size());
    s.mask = with_mask ? mask.data() : nullptr;
    return s;
  }
  // Only the in-loss tokens, as a plain sequence.
  Seq policy_only() const {
    Seq o;
    for (size_t t = 0; t < logp.size(); ++t) {
      if (!mask[t]) continue;
      o.logp.push_back(logp[t]);
      o.old_logp.push_back(old_logp[t]);
      o.ref_logp.push_back(ref_logp[t]);
      o.entropy.push_back(entropy[t]);
      o.adv.push_back(adv[t]);
    }
    return o;
  }
};

std::vector<Seq> episodes() {
  std::vector<Seq> v(3);
  Rng rng(5, 0);
  for (size_t i = 0; i < v.size(); ++i) {
    const int n = 9 + 4 * static_cast<int>(i);
    for (int t = 0; t < n; ++t) {
      v[i].logp.push_back(-0.1f - float(rng.uniform()));
      v[i].old_logp.push_back(v[i].logp.back() + 0.3f * float(rng.uniform() - 0.5));
      v[i].ref_logp.push_back(v[i].logp.back() + 0.2f * float(rng.uniform() - 0.5));
      v[i].entropy.push_back(float(rng.uniform()));
      v[i].adv.push_back(i == 1 ? -0.8 : 0.6);
      v[i].mask.push_back(t % 4 == 1 || t % 4 == 2 ? 0 : 1);  // observations in the middle
    }
  }
  return v;
}

double loss_of(const std::vector<Seq>& seqs, const LossConfig& cfg, bool with_mask,
               std::vector<std::vector<double>>* dlogp = nullptr) {
  std::vector<SeqTerms> terms;
  for (const Seq& s : seqs) terms.push_back(s.terms(with_mask));
  std::vector<std::vector<double>> dl, de;
  LossMetrics m = grpo_loss(terms, cfg, dl, de);
  if (dlogp != nullptr) *dlogp = dl;
  return m.loss;
}

std::vector<LossConfig> configs() {
  std::vector<LossConfig> out;
  for (PolicyLoss p : {PolicyLoss::kClip, PolicyLoss::kCispo, PolicyLoss::kGmpo}) {
    for (LossAgg a : {LossAgg::kSeqMeanTokenMean, LossAgg::kTokenMean}) {
      for (RatioLevel l : {RatioLevel::kToken, RatioLevel::kSequence}) {
        LossConfig c;
        c.policy = p;
        c.agg = a;
        c.level = l;
        c.beta = 0.05;
        c.entropy_coef = 0.01;
        out.push_back(c);
      }
    }
  }
  return out;
}

TEST(EpisodeLoss, ObservationTokensGetNoGradient) {
  const std::vector<Seq> seqs = episodes();
  for (const LossConfig& cfg : configs()) {
    SCOPED_TRACE("policy " + std::to_string(int(cfg.policy)) + " agg " + std::to_string(int(cfg.agg)) +
                 " level " + std::to_string(int(cfg.level)));
    std::vector<std::vector<double>> dlogp;
    const double loss = loss_of(seqs, cfg, true, &dlogp);
    // The loss is the loss of the policy tokens alone, and so is its gradient.
    std::vector<Seq> own;
    for (const Seq& s : seqs) own.push_back(s.policy_only());
    std::vector<std::vector<double>> dl_own;
    EXPECT_EQ(loss, loss_of(own, cfg, false, &dl_own));
    for (size_t i = 0; i < seqs.size(); ++i) {
      size_t k = 0;
      for (size_t t = 0; t < seqs[i].mask.size(); ++t) {
        if (seqs[i].mask[t] == 0) {
          EXPECT_EQ(dlogp[i][t], 0.0);
          // Central finite difference on an observation's logprob (and on its old and
          // reference logprobs, which may be anything, NaN included): exactly zero.
          for (float h : {1e-2f, 1.0f}) {
            std::vector<Seq> up = seqs, down = seqs;
            up[i].logp[t] += h;
            down[i].logp[t] -= h;
            up[i].old_logp[t] = std::nanf("");
            down[i].ref_logp[t] = std::nanf("");
            EXPECT_EQ(loss_of(up, cfg, true) - loss_of(down, cfg, true), 0.0);
          }
        } else {
          EXPECT_EQ(dlogp[i][t], dl_own[i][k++]);
        }
      }
    }
    // And the gradient of a policy token agrees with finite differences (not for CISPO,
    // whose IS weight is detached by design: its gradient is not the loss value's).
    if (cfg.policy == PolicyLoss::kCispo) continue;
    std::vector<Seq> up = seqs, down = seqs;
    const double h = 1e-3;
    up[0].logp[3] += float(h);
    down[0].logp[3] -= float(h);
    const double fd = (loss_of(up, cfg, true) - loss_of(down, cfg, true)) / (double(up[0].logp[3]) - down[0].logp[3]);
    EXPECT_NEAR(fd, dlogp[0][3], 2e-3 * std::max(1.0, std::abs(fd)));
  }
}

Rollout episode_record() {
  Rollout r;
  r.prompt_id = "p1";
  r.prompt_ids = {5, 6, 7};
  r.completion_ids = {10, 11, 12, 13, 14, 15, 1};
  r.loss_mask = {1, 1, 0, 0, 1, 1, 1};
  r.old_logprobs = {-1, -2, std::nanf(""), std::nanf(""), -1.5, -0.5, -0.1f};
  r.reward = 1.0;
  r.turns = {{"assistant", 0, 2, "ab", "", "", 0.0},
             {"tool", 2, 4, "cd", "calculator", "ok", 0.25},
             {"assistant", 4, 7, "efg", "", "", 0.0}};
  r.turns[1].reward = -0.5;  // an environment's step reward
  return r;
}

TEST(EpisodeRecord, MaskAndTurnsSurviveTheRolloutFile) {
  const Rollout r = episode_record();
  const Json j = rollout_to_json(r);
  EXPECT_TRUE(j["old_logprobs"][2].is_null());
  RolloutLimits lim;
  lim.vocab = 100;
  lim.advantage_needs_group = false;
  Rollout back = rollout_from_json(j, "f", 1, lim);
  EXPECT_EQ(back.loss_mask, r.loss_mask);
  ASSERT_EQ(back.turns.size(), 3u);
  EXPECT_EQ(back.turns[1].tool, "calculator");
  EXPECT_EQ(back.turns[1].status, "ok");
  EXPECT_EQ(back.turns[1].seconds, 0.25);
  EXPECT_EQ(back.turns[1].reward, -0.5);
  EXPECT_TRUE(std::isnan(back.turns[0].reward));
  EXPECT_EQ(back.turns[2].begin, 4);
  EXPECT_TRUE(std::isnan(back.old_logprobs[3]));
  EXPECT_EQ(back.old_logprobs[4], -1.5f);
  // A null logprob is only accepted on an observation token.
  Json bad = j;
  bad["old_logprobs"][0] = nullptr;
  EXPECT_THROW(rollout_from_json(bad, "f", 1, lim), Error);
  bad = j;
  bad["loss_mask"][0] = 2;
  EXPECT_THROW(rollout_from_json(bad, "f", 1, lim), Error);
  bad = j;
  bad["turns"][1]["end"] = 99;
  EXPECT_THROW(rollout_from_json(bad, "f", 1, lim), Error);
}

TEST(EpisodeRecord, RunDbKeepsTheTurnsAndTheMask) {
  const std::string dir = fresh_dir("episode_db");
  std::filesystem::create_directories(dir);
  {
    runlog::RunDb db(dir + "/run.db", "grpo", Json::object(), "m", false);
    db.write_step(1, Json::object(), {episode_record()}, true);
    db.finish("finished");
  }
  auto db = runlog::RunDb::open_readonly(dir + "/run.db");
  auto rows = db->read_rollouts(1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].loss_mask, episode_record().loss_mask);
  ASSERT_EQ(rows[0].turns.size(), 3u);
  EXPECT_EQ(rows[0].turns[1].role, "tool");
  EXPECT_EQ(rows[0].turns[1].text, "cd");
  auto q = db->query("SELECT role, tool, status FROM rollout_turns ORDER BY turn");
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[1]["tool"], "calculator");
  EXPECT_TRUE(q[0]["tool"].is_null());
}

// A tool program (bash) that answers or hangs.
std::string tool_script(const std::string& name, bool hang) {
  const std::string path = fresh_dir("tool_" + name) + ".sh";
  std::ofstream(path) << "#!/bin/bash\n"
                      << (hang ? "sleep 100\n"
                               : "while read -r line; do echo '{\"output\": \"ok\"}'; done\n");
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

// The tiny model writes many 7s: with "7" as both the call's open and close marker, nearly
// every episode calls the tool.
Json tool_config(const std::string& out, const std::string& script) {
  Json raw = base_config(out);
  raw["grpo"]["steps"] = 1;
  raw["grpo"]["save_every"] = 1;
  raw["sampling"]["max_new_tokens"] = 24;
  raw["rollout"] = {{"tools", Json::array({Json{{"name", "t"}, {"command", script}, {"timeout_s", 0.3}}})},
                    {"tool_stop", {{"open", "7"}, {"close", "7"}, {"tool", "t"}}},
                    {"max_turns", 3}};
  return raw;
}

TEST(EpisodeTrain, HangingToolEndsItsEpisodeWithRewardZero) {
  auto reg = registry();
  const std::string out = fresh_dir("episode_hang");
  Json raw = tool_config(out, tool_script("hang", true));
  Json m;
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run([&](const StepReport& r) { m = r.metrics; });
  EXPECT_TRUE(std::isfinite(m["loss"].get<double>())) << m.dump();
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  auto broken = db->query("SELECT reward, completion FROM rollouts WHERE finish_reason = 'tool_error'");
  ASSERT_GT(broken.size(), 0u);
  for (const Json& b : broken) {
    EXPECT_EQ(b["reward"].get<double>(), 0.0);
    EXPECT_NE(b["completion"].get<std::string>().find('7'), std::string::npos);  // the Sevens reward would pay
  }
  auto status = db->query("SELECT DISTINCT status FROM rollout_turns WHERE role = 'tool'");
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0]["status"], "fatal: t: no reply within 0.3 s");
}

TEST(EpisodeTrain, EpisodesReplayFromExportedRollouts) {
  auto reg = registry();
  const std::string a = fresh_dir("episode_ok");
  Json raw = tool_config(a, tool_script("ok", false));
  Json m;
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run([&](const StepReport& r) { m = r.metrics; });
  // The engine's logprobs of the policy tokens agree with the trainer's forward over episodes.
  ASSERT_TRUE(m.contains("logprob_mismatch")) << m.dump();
  EXPECT_LT(m["logprob_mismatch"].get<double>(), 1e-4);
  const std::string file = a + "/step1.jsonl";
  {
    std::ofstream f(file);
    ASSERT_GT(export_step(a + "/run.db", 1, false, f), 0);
  }
  int64_t with_obs = 0;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line);
    if (!j.contains("loss_mask")) continue;
    ++with_obs;
    ASSERT_TRUE(j.contains("turns"));
    for (size_t t = 0; t < j["loss_mask"].size(); ++t) {
      EXPECT_EQ(j["old_logprobs"][t].is_null(), j["loss_mask"][t] == 0);
    }
  }
  EXPECT_GT(with_obs, 0);
  // Replaying the file from the same checkpoint makes the same update.
  Json rb = base_config(fresh_dir("episode_replay"));
  rb["grpo"] = raw["grpo"];
  rb["sampling"] = raw["sampling"];
  rb["rollouts"] = file;
  Json mr;
  Trainer(TrainConfig::from_json(rb), rb, false, &reg).run([&](const StepReport& r) { mr = r.metrics; });
  EXPECT_NEAR(mr["loss"].get<double>(), m["loss"].get<double>(), 1e-6);
}

// An environment through the whole trainer: every episode starts with its reset observation,
// its step rewards are stored on the turns and, under process advantages, become step rewards
// at the ends of the policy's turns; the env reward sums them.
TEST(EpisodeTrain, EnvironmentStepRewardsReachProcessAdvantages) {
  auto reg = registry();
  const std::string out = fresh_dir("episode_env");
  const std::string env = fresh_dir("env_script") + ".sh";
  std::ofstream(env) << "#!/bin/bash\nread -r line; echo '{\"observation\": \"go\\n\"}'\n"
                        "n=0; while read -r line; do n=$((n+1));"
                        " echo \"{\\\"observation\\\": \\\"s$n\\\", \\\"reward\\\": 0.$n}\"; done\n";
  std::filesystem::permissions(env, std::filesystem::perms::owner_all);
  Json raw = tool_config(out, env);
  raw["rollout"]["tools"][0]["environment"] = true;
  raw["rewards"] = Json::array({Json{{"name", "env"}}});
  raw["grpo"]["advantage"] = "process";
  Json m;
  Trainer(TrainConfig::from_json(raw), raw, false, &reg).run([&](const StepReport& r) { m = r.metrics; });
  EXPECT_TRUE(std::isfinite(m["loss"].get<double>())) << m.dump();
  auto db = runlog::RunDb::open_readonly(out + "/run.db");
  auto rows = db->read_rollouts(1);
  ASSERT_FALSE(rows.empty());
  int64_t stepped = 0;
  for (const Rollout& r : rows) {
    ASSERT_FALSE(r.turns.empty());
    EXPECT_EQ(r.turns[0].tool, "t");  // the reset comes first
    EXPECT_EQ(r.completion_text.rfind("go\n", 0), 0u) << r.completion_text;
    double sum = 0;
    for (const Turn& t : r.turns) sum += std::isfinite(t.reward) ? t.reward : 0.0;
    if (r.finish_reason != "tool_error") {
      EXPECT_NEAR(r.reward, sum, 1e-12);
    }
    stepped += sum > 0;
  }
  EXPECT_GT(stepped, 0) << "no episode took a step";
  auto q = db->query("SELECT COUNT(*) AS n FROM rollout_turns WHERE reward IS NOT NULL");
  EXPECT_GT(q[0]["n"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace aha::grpo
