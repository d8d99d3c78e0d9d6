// Environments (reset/step) in the engine: the episode starts with the reset observation (out of
// the loss), each action's step reward lands on its tool turn, done ends the episode, and the
// recorded logprobs still equal the training forward over the whole episode.
#include <gtest/gtest.h>

#include <cmath>

#include "../policy/test_configs.h"
#include "byte_text.h"
#include "aha/policy/model.h"
#include "aha/rollout/engine.h"

namespace aha::rollout {
namespace {

constexpr int32_t kEos = 1;

using testing::ids_of;
using testing::text_of;

// A guessing game: reset names the range; each action is a guess, answered "higher"/"lower"
// with reward -0.1, and the right guess ends the episode with reward 1. The secret is the
// prompt's last digit.
class GuessEnv : public Tool {
 public:
  explicit GuessEnv(std::string reset_text = "guess 0-9") : reset_text_(std::move(reset_text)) {}
  std::string name() const override { return "game"; }
  bool environment() const override { return true; }
  std::unique_ptr<ToolSession> open(const std::string& prompt) const override {
    struct S : ToolSession {
      int secret = 0;
      std::string reset_text;
      ToolResult reset() override { return {ToolStatus::kOk, reset_text}; }
      ToolResult call(const std::string& input) override {
        const int g = input.empty() ? -1 : input[0] - '0';
        ToolResult r;
        if (g == secret) {
          r.output = "right";
          r.reward = 1.0;
          r.done = true;
        } else {
          r.output = g < secret ? "higher" : "lower";
          r.reward = -0.1;
        }
        return r;
      }
    };
    auto s = std::make_unique<S>();
    s->secret = prompt.back() - '0';
    s->reset_text = reset_text_;
    return s;
  }

 private:
  std::string reset_text_;
};

// The policy guesses 5, then 2 or 7 as told, then the secret.
std::optional<int32_t> guesser(const Rollout& so_far) {
  std::string own;
  for (int64_t t = 0; t < so_far.n(); ++t) {
    if (so_far.in_loss(t)) own += static_cast<char>(so_far.completion_ids[t]);
  }
  const int secret = so_far.prompt_text.back() - '0';
  std::string script = "<g>5</g>";
  if (secret != 5) script += std::string("<g>") + (secret < 5 ? "2" : "7") + "</g>";
  if (secret != 5 && secret != 2 && secret != 7) script += "<g>" + std::to_string(secret) + "</g>";
  if (own.size() < script.size()) return static_cast<int32_t>(script[own.size()]);
  return kEos;
}

EngineOptions env_options(const Tool* env) {
  EngineOptions o;
  o.seed = 3;
  o.detokenize = text_of;
  o.episodes.tools = {env};
  o.episodes.format = CallFormat::from_json(
      Json{{"open", "<g>"}, {"close", "</g>"}, {"tool", "game"}, {"obs_prefix", "["},
           {"obs_suffix", "]"}},
      "rollout.tool_stop");
  o.episodes.tokenize = ids_of;
  o.episodes.max_turns = 6;
  return o;
}

std::vector<Request> games(const std::vector<int>& secrets) {
  std::vector<Request> reqs;
  for (int s : secrets) {
    Request r;
    r.text = "play " + std::to_string(s);
    r.prompt = ids_of(r.text);
    r.n = 2;
    r.params.max_new_tokens = 120;
    r.params.stop_token_ids = {kEos};
    reqs.push_back(r);
  }
  return reqs;
}

std::unique_ptr<policy::Model<float>> tiny_model() {
  Json j = policy::testing::tiny_llama_json();
  j["vocab_size"] = 128;
  j["max_position_embeddings"] = 512;
  auto m = std::make_unique<policy::Model<float>>(policy::ModelConfig::from_json(j));
  m->init_random(5, 0.3);
  return m;
}

TEST(Environment, ResetStepRewardsAndDone) {
  auto m = tiny_model();
  GuessEnv env;
  EngineOptions o = env_options(&env);
  o.force_token = guesser;
  const auto out = Engine(*m, o).generate(games({5, 3, 8}));
  ASSERT_EQ(out.size(), 6u);
  for (const Rollout& r : out) {
    SCOPED_TRACE(r.prompt_text);
    const int secret = r.prompt_text.back() - '0';
    std::string want = "guess 0-9<g>5</g>";
    std::vector<double> rewards;
    if (secret == 5) {
      rewards = {1.0};
    } else {
      want += secret < 5 ? "[lower\n]<g>2</g>[higher\n]" : "[higher\n]<g>7</g>[higher\n]";
      want += "<g>" + std::to_string(secret) + "</g>";
      rewards = {-0.1, -0.1, 1.0};
    }
    EXPECT_EQ(text_of(r.completion_ids), want);
    EXPECT_EQ(r.finish_reason, "stop");  // done: no EOS was needed
    // The reset observation is the environment's, out of the loss.
    for (int64_t t = 0; t < 9; ++t) EXPECT_FALSE(r.in_loss(t)) << t;
    EXPECT_TRUE(r.in_loss(9));
    ASSERT_FALSE(r.turns.empty());
    EXPECT_EQ(r.turns[0].role, "tool");
    EXPECT_EQ(r.turns[0].tool, "game");
    EXPECT_EQ(r.turns[0].end, 9);
    std::vector<double> got;
    for (const Turn& t : r.turns) {
      if (std::isfinite(t.reward)) got.push_back(t.reward);
    }
    EXPECT_EQ(got, rewards);
    EXPECT_EQ(r.turns.back().text, "right");  // the last observation is logged, not appended
    EXPECT_EQ(r.turns.back().begin, r.n());
  }
}

TEST(Environment, EmptyResetSamplesFromThePromptAndLogprobsMatchTraining) {
  auto m = tiny_model();
  GuessEnv with_text, silent("");
  for (const GuessEnv* env : {&with_text, &silent}) {
    EngineOptions o = env_options(env);  // the model samples freely: budgets end it
    auto reqs = games({4});
    reqs[0].params.max_new_tokens = 40;
    const auto out = Engine(*m, o).generate(reqs);
    for (const Rollout& r : out) {
      policy::Batch b;
      b.tokens = r.prompt_ids;
      b.tokens.insert(b.tokens.end(), r.completion_ids.begin(), r.completion_ids.end());
      b.seq_starts = {0, static_cast<int64_t>(b.tokens.size())};
      policy::Activations<float> acts;
      m->forward(b, policy::ForwardOptions{}, acts);
      const int64_t p = static_cast<int64_t>(r.prompt_ids.size());
      int64_t own = 0;
      for (int64_t t = 0; t < r.n(); ++t) {
        if (!r.in_loss(t)) continue;
        ++own;
        EXPECT_NEAR(r.sampled_logprobs[t], acts.logprob[p - 1 + t], 1e-4) << t;
      }
      EXPECT_GT(own, 0);
      if (env == &silent) {
        EXPECT_TRUE(r.in_loss(0));  // nothing to feed: the first token is sampled
      }
    }
  }
}

}  // namespace
}  // namespace aha::rollout
