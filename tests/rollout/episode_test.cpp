// Multi-turn, tool-using episodes in the engine: a scripted policy (forced tokens) and scripted
// tools give byte-exact episodes whatever the batch size, thread count or tool timing; the
// logprobs recorded across turns equal the training forward over the whole episode; a broken
// tool ends only its own episode.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "../policy/test_configs.h"
#include "byte_text.h"
#include "aha/core/threading.h"
#include "aha/policy/model.h"
#include "aha/rollout/engine.h"

namespace aha::rollout {
namespace {

using policy::Model;
using policy::ModelConfig;

constexpr int32_t kEos = 1;

using testing::ids_of;
using testing::text_of;

std::unique_ptr<Model<float>> make_model(Json j) {
  j["vocab_size"] = 128;
  j["max_position_embeddings"] = 512;
  auto m = std::make_unique<Model<float>>(ModelConfig::from_json(j));
  m->init_random(23, 0.3);
  return m;
}

// A scripted tool: echoes its input with the session's call count ("12#1"), after a delay that
// depends on the input, so tools finish out of order.
class EchoTool : public Tool {
 public:
  std::string name() const override { return "echo"; }
  std::unique_ptr<ToolSession> open(const std::string&) const override {
    struct S : ToolSession {
      int calls = 0;
      ToolResult call(const std::string& input) override {
        std::this_thread::sleep_for(std::chrono::milliseconds(3 * (input.size() % 5)));
        if (input == "boom") return {ToolStatus::kFatal, "the tool broke"};
        if (input == "throw") throw std::runtime_error("thrown inside the tool");
        if (input == "huge") return {ToolStatus::kOk, std::string(10000, 'x')};
        if (input == "bad") return {ToolStatus::kError, "no such thing"};
        return {ToolStatus::kOk, input + "#" + std::to_string(++calls)};
      }
    };
    return std::make_unique<S>();
  }
};

CallFormat marker_format() {
  return CallFormat::from_json(Json{{"open", "<c>"}, {"close", "</c>"}, {"tool", "echo"}},
                               "rollout.tool_stop");
}

// The policy's side of episode (group, sample): its script, one turn per element.
std::vector<std::string> script_of(int64_t group, int64_t sample) {
  const std::string g = std::to_string(group), s = std::to_string(sample);
  if (group == 3) return {"A<c>boom</c>", "never"};
  if (group == 4) return {"plain answer " + g + s};
  return {"A" + s + "<c>" + g + "+" + s + "</c>", "B<c>x" + s + "</c>", "C" + g};
}

// Forces the script's next character (the count of the policy's own tokens so far picks it),
// then EOS; nullopt past the script lets the model sample.
std::optional<int32_t> scripted(const Rollout& so_far) {
  std::string all;
  for (const auto& t : script_of(so_far.group, so_far.sample_index)) all += t;
  int64_t own = 0;
  for (int64_t t = 0; t < so_far.n(); ++t) own += so_far.in_loss(t);
  if (own < static_cast<int64_t>(all.size())) return static_cast<int32_t>(all[own]);
  return kEos;
}

EngineOptions episode_options(const Tool* tool) {
  EngineOptions o;
  o.seed = 11;
  o.detokenize = text_of;
  o.episodes.tools = {tool};
  o.episodes.format = marker_format();
  o.episodes.tokenize = ids_of;
  o.episodes.max_output_bytes = 100;
  o.episodes.tool_threads = 3;
  return o;
}

std::vector<Request> requests(int groups, int n) {
  std::vector<Request> reqs;
  for (int g = 0; g < groups; ++g) {
    Request r;
    r.prompt = ids_of("Q" + std::to_string(g) + ":");
    r.n = n;
    r.params.max_new_tokens = 200;
    r.params.stop_token_ids = {kEos};
    reqs.push_back(r);
  }
  return reqs;
}

std::string obs(const std::string& out) { return "\n<output>\n" + out + "\n</output>\n"; }

TEST(Episode, ScriptedPolicyAndToolGiveByteExactEpisodes) {
  auto m = make_model(policy::testing::tiny_llama_json());
  EchoTool echo;
  EngineOptions o = episode_options(&echo);
  o.force_token = scripted;
  const auto out = Engine(*m, o).generate(requests(5, 3));
  ASSERT_EQ(out.size(), 15u);
  for (const Rollout& r : out) {
    const std::string g = std::to_string(r.group), s = std::to_string(r.sample_index);
    SCOPED_TRACE("episode " + g + "/" + s);
    std::string want;
    std::vector<uint8_t> mask;
    auto own = [&](const std::string& t) {
      want += t;
      mask.insert(mask.end(), t.size(), 1);
    };
    auto tool = [&](const std::string& t) {
      want += t;
      mask.insert(mask.end(), t.size(), 0);
    };
    if (r.group == 3) {
      own("A<c>boom</c>");
      EXPECT_EQ(r.finish_reason, "tool_error");
      EXPECT_EQ(r.error, "echo: the tool broke");
      ASSERT_EQ(r.turns.size(), 2u);
      EXPECT_EQ(r.turns[1].status, "fatal: the tool broke");
    } else if (r.group == 4) {
      own("plain answer " + g + s + "\x01");
      EXPECT_EQ(r.finish_reason, "stop");
      ASSERT_EQ(r.turns.size(), 1u);
    } else {
      own("A" + s + "<c>" + g + "+" + s + "</c>");
      tool(obs(g + "+" + s + "#1"));
      own("B<c>x" + s + "</c>");
      tool(obs("x" + s + "#2"));  // the session kept its count: state across turns
      own("C" + g + "\x01");
      EXPECT_EQ(r.finish_reason, "stop");
      ASSERT_EQ(r.turns.size(), 5u);
      const char* roles[] = {"assistant", "tool", "assistant", "tool", "assistant"};
      int64_t at = 0;
      for (size_t k = 0; k < 5; ++k) {
        EXPECT_EQ(r.turns[k].role, roles[k]);
        EXPECT_EQ(r.turns[k].begin, at);
        at = r.turns[k].end;
        if (k % 2 == 1) {
          EXPECT_EQ(r.turns[k].tool, "echo");
          EXPECT_EQ(r.turns[k].status, "ok");
        }
      }
      EXPECT_EQ(at, r.n());
      EXPECT_EQ(r.turns[1].text, obs(g + "+" + s + "#1"));
    }
    EXPECT_EQ(text_of(r.completion_ids), want);
    EXPECT_EQ(r.loss_mask, mask);
    ASSERT_EQ(r.sampled_logprobs.size(), r.completion_ids.size());
    for (int64_t t = 0; t < r.n(); ++t) {
      EXPECT_EQ(std::isnan(r.sampled_logprobs[t]), !r.in_loss(t)) << t;
    }
  }
}

TEST(Episode, SameEpisodesForAnyBatchSizeThreadsAndToolTiming) {
  auto m = make_model(policy::testing::tiny_v3_json());
  EchoTool echo;
  std::vector<std::vector<Rollout>> runs;
  for (int max_batch : {64, 2, 5}) {
    for (int threads : {1, 2}) {
      ThreadLimit limit(threads);
      EngineOptions o = episode_options(&echo);
      o.max_batch = max_batch;
      o.episodes.tool_threads = threads;
      o.record_routing = true;
      // The calls are forced, the rest sampled: sampling must resume identically.
      o.force_token = [](const Rollout& so_far) -> std::optional<int32_t> {
        const std::string call = "<c>" + std::to_string(so_far.sample_index) + "</c>";
        if (so_far.n() < static_cast<int64_t>(call.size())) return call[so_far.n()];
        return std::nullopt;
      };
      auto reqs = requests(3, 4);
      for (auto& r : reqs) r.params.max_new_tokens = 60;
      runs.push_back(Engine(*m, o).generate(reqs));
    }
  }
  for (size_t k = 1; k < runs.size(); ++k) {
    ASSERT_EQ(runs[k].size(), runs[0].size());
    for (size_t i = 0; i < runs[0].size(); ++i) {
      EXPECT_EQ(runs[k][i].completion_ids, runs[0][i].completion_ids) << "run " << k << " #" << i;
      EXPECT_EQ(runs[k][i].loss_mask, runs[0][i].loss_mask);
      EXPECT_EQ(runs[k][i].routing, runs[0][i].routing);
      EXPECT_EQ(runs[k][i].finish_reason, runs[0][i].finish_reason);
    }
  }
}

// The observation goes into the cache through the decode path, with no re-prefill: the
// logprobs of every policy token after it still equal the training forward over the whole
// episode (prompt, turns and observations), for MLA/MoE and GQA models.
TEST(Episode, LogprobsAcrossTurnsEqualTheTrainingForward) {
  for (const Json& j : {policy::testing::tiny_v3_json(), policy::testing::tiny_llama_json()}) {
    auto m = make_model(j);
    EchoTool echo;
    EngineOptions o = episode_options(&echo);
    o.force_token = [](const Rollout& so_far) -> std::optional<int32_t> {
      // Two calls, each followed by sampled tokens.
      const std::string first = "<c>ab</c>";
      if (so_far.n() < static_cast<int64_t>(first.size())) return first[so_far.n()];
      int64_t obs_end = -1;
      for (const Turn& t : so_far.turns) {
        if (t.role == "tool") obs_end = t.end;
      }
      const int64_t since = so_far.n() - obs_end;
      if (so_far.turns.size() == 2 && since >= 5 && since < 5 + 9) return first[since - 5];
      return std::nullopt;
    };
    auto reqs = requests(2, 3);
    for (auto& r : reqs) {
      r.params.max_new_tokens = 120;
      r.params.stop_token_ids = {};  // run to the budget: many sampled tokens after the calls
      r.params.temperature = 0.9;
    }
    o.episodes.max_turns = 2;
    const auto out = Engine(*m, o).generate(reqs);
    for (const Rollout& r : out) {
      int tool_turns = 0;
      for (const Turn& t : r.turns) tool_turns += t.role == "tool";
      EXPECT_EQ(tool_turns, 2) << m->config().type_name();
      std::vector<int32_t> seq = r.prompt_ids;
      seq.insert(seq.end(), r.completion_ids.begin(), r.completion_ids.end());
      policy::Activations<float> acts;
      m->forward(policy::Batch::from_sequences({seq}), {}, acts);
      const size_t p = r.prompt_ids.size();
      int64_t checked_after_obs = 0;
      for (int64_t t = 0; t < r.n(); ++t) {
        if (!r.in_loss(t)) continue;
        EXPECT_NEAR(r.sampled_logprobs[t], acts.logprob[p - 1 + t], 1e-4)
            << m->config().type_name() << " token " << t;
        checked_after_obs += t > r.turns[1].end;
      }
      EXPECT_GT(checked_after_obs, 50);
    }
  }
}

TEST(Episode, BrokenToolsEndOnlyTheirEpisode) {
  auto m = make_model(policy::testing::tiny_llama_json());
  EchoTool echo;
  EngineOptions o = episode_options(&echo);
  o.force_token = [](const Rollout& so_far) -> std::optional<int32_t> {
    static const char* calls[] = {"<c>boom</c>", "<c>throw</c>", "<c>huge</c>", "<c>bad</c>.",
                                  "fine."};
    const std::string c = calls[so_far.group];
    int64_t own = 0;
    for (int64_t t = 0; t < so_far.n(); ++t) own += so_far.in_loss(t);
    if (own < static_cast<int64_t>(c.size())) return c[own];
    return kEos;
  };
  const auto out = Engine(*m, o).generate(requests(5, 2));
  ASSERT_EQ(out.size(), 10u);
  for (const Rollout& r : out) {
    switch (r.group) {
      case 0:
      case 1:
      case 2:
        EXPECT_EQ(r.finish_reason, "tool_error") << r.group;
        EXPECT_EQ(r.turns.back().status.rfind("fatal: ", 0), 0u) << r.turns.back().status;
        EXPECT_FALSE(r.error.empty());
        break;
      case 3:  // an error the model sees is an observation, not the end
        EXPECT_EQ(r.finish_reason, "stop");
        EXPECT_EQ(r.turns[1].status, "error");
        EXPECT_EQ(r.turns[1].text, obs("no such thing"));
        break;
      default:
        EXPECT_EQ(r.finish_reason, "stop");
        EXPECT_EQ(text_of(r.completion_ids), "fine.\x01");
    }
  }
  EXPECT_NE(out[4].error.find("max_output_bytes"), std::string::npos) << out[4].error;  // group 2
  EXPECT_NE(out[2].error.find("thrown inside the tool"), std::string::npos) << out[2].error;  // group 1
}

// A call whose last token runs past the close marker ("</c>\n" as one token, as byte-level
// pre-tokenizers make of "</calc>\n"): the observation does not repeat the newline.
TEST(Episode, ObservationContinuesTheCallsLastToken) {
  auto m = make_model(policy::testing::tiny_llama_json());
  EchoTool echo;
  EngineOptions o = episode_options(&echo);
  o.episodes.format.obs_prefix = "\n<o>";
  o.detokenize = [](const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += id == 127 ? std::string("</c>\n") : std::string(1, char(id));
    return s;
  };
  o.force_token = [](const Rollout& so_far) -> std::optional<int32_t> {
    static const std::vector<int32_t> script = {'<', 'c', '>', '7', 127, '!', kEos};
    int64_t own = 0;
    for (int64_t t = 0; t < so_far.n(); ++t) own += so_far.in_loss(t);
    return script[std::min<int64_t>(own, script.size() - 1)];
  };
  auto out = Engine(*m, o).generate(requests(1, 1));
  ASSERT_EQ(out[0].turns.size(), 3u);
  EXPECT_EQ(out[0].turns[1].text, "<o>7#1\n</output>\n");
}

TEST(Episode, BudgetsAndParsing) {
  auto m = make_model(policy::testing::tiny_llama_json());
  EchoTool echo;
  EngineOptions o = episode_options(&echo);
  o.episodes.max_turns = 1;
  o.force_token = [](const Rollout& so_far) -> std::optional<int32_t> {
    const std::string c = "<c>1</c>x<c>2</c>";
    int64_t own = 0;
    for (int64_t t = 0; t < so_far.n(); ++t) own += so_far.in_loss(t);
    if (own < static_cast<int64_t>(c.size())) return c[own];
    return kEos;
  };
  auto out = Engine(*m, o).generate(requests(1, 1));
  EXPECT_EQ(out[0].finish_reason, "max_turns");
  // A per-turn budget of 5 policy tokens ends the first turn before its call closes.
  o.episodes.max_turns = 4;
  o.episodes.max_turn_tokens = 5;
  out = Engine(*m, o).generate(requests(1, 1));
  EXPECT_EQ(out[0].finish_reason, "length");
  EXPECT_EQ(out[0].n(), 5);

  CallFormat tc = CallFormat::from_json("tool_call", "k");
  auto call = find_call(tc, "hi <tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1+2\"}}</tool_call>");
  ASSERT_TRUE(call);
  EXPECT_EQ(call->tool, "calculator");
  EXPECT_EQ(call->input, "{\"expression\":\"1+2\"}");
  call = find_call(tc, "<tool_call>{oops</tool_call>");
  ASSERT_TRUE(call);
  EXPECT_FALSE(call->error.empty());
  EXPECT_FALSE(find_call(tc, "<tool_call>{\"name\": \"x\"}"));
  CallFormat py = CallFormat::from_json("python", "k");
  call = find_call(py, "Let me compute.\n```python\nprint(2**10)\n```");
  ASSERT_TRUE(call);
  EXPECT_EQ(call->tool, "python");
  EXPECT_EQ(call->input, "print(2**10)\n");
  EXPECT_EQ(call->tail, "");
  call = find_call(marker_format(), "x<c>1</c>\n");  // the close marker ended inside a token
  ASSERT_TRUE(call);
  EXPECT_EQ(call->tail, "\n");
  EXPECT_THROW(CallFormat::from_json("xml", "rollout.tool_stop"), Error);
  EXPECT_THROW(CallFormat::from_json(Json{{"open", "<c>"}}, "rollout.tool_stop"), Error);
}

}  // namespace
}  // namespace aha::rollout
