// Speculative decoding with the MTP module as the draft: greedy gives exactly the greedy tokens
// (and their logprobs and routing), sampling follows plain sampling's distribution, the recorded
// logprobs equal the training forward's, and outputs do not depend on the batch or threads.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <tuple>

#include "../policy/test_configs.h"
#include "test_requests.h"
#include "aha/core/error.h"
#include "aha/core/threading.h"
#include "aha/policy/model.h"
#include "aha/policy/mtp.h"
#include "aha/rollout/decoder.h"
#include "aha/rollout/engine.h"

namespace aha::rollout {
namespace {

using policy::Model;
using policy::ModelConfig;

std::unique_ptr<Model<float>> mtp_model(Json j, uint64_t seed = 17) {
  j["num_nextn_predict_layers"] = 1;
  auto m = std::make_unique<Model<float>>(ModelConfig::from_json(j));
  m->init_random(seed, 0.3);
  return m;
}

std::vector<Json> mtp_configs() {
  return {policy::testing::tiny_v3_json(), policy::testing::tiny_v2_json(),
          policy::testing::tiny_v32_json()};
}

// Pearson's chi-square of two samples' counts over the same cells.
double chi_square(const std::map<std::vector<int32_t>, int>& a,
                  const std::map<std::vector<int32_t>, int>& b, double na, double nb, int& cells) {
  std::map<std::vector<int32_t>, std::pair<int, int>> both;
  for (const auto& [k, v] : a) both[k].first = v;
  for (const auto& [k, v] : b) both[k].second = v;
  double chi = 0;
  cells = 0;
  for (const auto& [k, v] : both) {
    const double n = v.first + v.second;
    if (n < 5) continue;  // too rare to test
    const double ea = n * na / (na + nb), eb = n * nb / (na + nb);
    chi += (v.first - ea) * (v.first - ea) / ea + (v.second - eb) * (v.second - eb) / eb;
    ++cells;
  }
  return chi;
}

TEST(Speculative, GreedyEmitsExactlyTheGreedyTokensLogprobsAndRouting) {
  int64_t drafted = 0, accepted = 0;
  for (const Json& j : mtp_configs()) {
    auto m = mtp_model(j);
    auto reqs = testing::requests_for(m->config().vocab_size, 5, 2, 20);
    for (auto& r : reqs) r.params.temperature = 0;
    reqs[3].params.repetition_penalty = 1.3;
    EngineOptions opts;
    opts.record_routing = true;
    const auto plain = Engine(*m, opts).generate(reqs);
    opts.speculative = true;
    const auto spec = Engine(*m, opts).generate(reqs, [&](const Progress& p) {
      drafted = std::max<int64_t>(drafted, p.drafted);
      accepted = std::max<int64_t>(accepted, p.accepted);
    });
    ASSERT_EQ(plain.size(), spec.size());
    for (size_t i = 0; i < plain.size(); ++i) {
      const std::string at = std::string(m->config().type_name()) + " completion " + std::to_string(i);
      EXPECT_EQ(spec[i].completion_ids, plain[i].completion_ids) << at;
      EXPECT_EQ(spec[i].sampled_logprobs, plain[i].sampled_logprobs) << at;
      EXPECT_EQ(spec[i].finish_reason, plain[i].finish_reason) << at;
      EXPECT_EQ(spec[i].routing, plain[i].routing) << at;
    }
  }
  // Both branches ran: some drafts kept, some replaced.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted);
}

// The distribution of three sampled tokens (top-k 3: 27 cells) from speculative and from plain
// sampling, 12k completions each, under a two-sample chi-square test (16 when written). It tells
// apart the usual mistakes: every draft kept (chi-square 20,579) or the replacement drawn from
// the target instead of the residual (170).
TEST(Speculative, SamplesFollowPlainSamplingsDistribution) {
  auto m = mtp_model(policy::testing::tiny_v3_json(), 5);
  Request r;
  r.prompt = {3, 1, 4, 1, 5};
  r.n = 12000;
  r.params.temperature = 1.0;
  r.params.top_k = 3;
  r.params.max_new_tokens = 3;
  r.params.stop_token_ids = {-1};  // never: every completion has 3 tokens
  auto counts = [&](bool speculative, uint64_t seed, Progress* last) {
    EngineOptions opts;
    opts.seed = seed;
    opts.speculative = speculative;
    opts.max_batch = 256;
    std::map<std::vector<int32_t>, int> c;
    for (const Rollout& o : Engine(*m, opts).generate({r}, [&](const Progress& p) {
           if (last != nullptr) *last = p;
         })) {
      EXPECT_EQ(o.completion_ids.size(), 3u);
      ++c[o.completion_ids];
    }
    return c;
  };
  Progress p;
  const auto plain = counts(false, 1, nullptr), spec = counts(true, 2, &p);
  int cells = 0;
  const double chi = chi_square(plain, spec, r.n, r.n, cells);
  EXPECT_GE(cells, 15);
  // df = cells - 1 <= 26: P(chi2 > 65) < 1e-4.
  EXPECT_LT(chi, 65.0) << cells << " cells";
  EXPECT_GT(p.accepted, p.drafted / 20);  // the two top-3 sets overlap in part
  EXPECT_LT(p.accepted, p.drafted);
}

TEST(Speculative, PickIsDistributedAsTheTargetForAnyDraft) {
  SamplingDist p;
  p.prob = {0.5, 0.0, 0.2, 0.3, 0.0};  // a truncated target
  const std::vector<std::vector<double>> drafts = {
      {0.1, 0.4, 0.1, 0.1, 0.3}, {0.0, 0.5, 0.0, 0.0, 0.5}, p.prob, {1, 0, 0, 0, 0}};
  for (const auto& q : drafts) {
    Rng rng(9);
    std::vector<int> n(5, 0);
    int kept = 0;
    const int N = 200000;
    for (int i = 0; i < N; ++i) {
      const int32_t d = draw(q, rng);
      bool acc = false;
      ++n[speculative_pick(p, q, d, rng, acc)];
      kept += acc;
    }
    double overlap = 0;
    for (int v = 0; v < 5; ++v) {
      overlap += std::min(p.prob[v], q[v]);
      const double sd = std::sqrt(N * p.prob[v] * (1 - p.prob[v])) + 1;
      EXPECT_NEAR(n[v], N * p.prob[v], 5 * sd) << "token " << v;
    }
    EXPECT_NEAR(kept, N * overlap, 5 * std::sqrt(N * overlap * (1 - overlap)) + 1);
  }
}

TEST(Speculative, RecordedLogprobsEqualScoringAndKeptSets) {
  for (const Json& j : mtp_configs()) {
    auto m = mtp_model(j);
    EngineOptions opts;
    opts.seed = 5;
    opts.speculative = true;
    opts.record_kept_ids = true;
    auto reqs = testing::requests_for(m->config().vocab_size, 3, 4, 12);
    reqs[1].params.temperature = 0.7;
    reqs[1].params.top_p = 0.9;
    reqs[2].params.top_k = 5;
    const auto out = Engine(*m, opts).generate(reqs);
    testing::expect_logprobs_match_forward(*m, reqs, out);
    for (const Rollout& comp : out) {
      ASSERT_EQ(comp.kept_ids.size(), comp.completion_ids.size());
      for (size_t i = 0; i < comp.completion_ids.size(); ++i) {
        EXPECT_LE(comp.sampling_dist_logprobs[i], 1e-6f);
        const auto& kept = comp.kept_ids[i];
        if (comp.group == 2) {
          ASSERT_EQ(kept.size(), 5u);
          EXPECT_TRUE(std::binary_search(kept.begin(), kept.end(), comp.completion_ids[i]));
        } else if (comp.group == 0) {
          EXPECT_TRUE(kept.empty());
        }
      }
    }
  }
}

TEST(Speculative, SameSeedSameOutputForAnyThreadsAndBatch) {
  auto m = mtp_model(policy::testing::tiny_v3_json());
  auto reqs = testing::requests_for(m->config().vocab_size, 5, 3, 14);
  EngineOptions opts;
  opts.seed = 11;
  opts.speculative = true;
  opts.record_routing = true;
  std::vector<Rollout> base;
  {
    ThreadLimit one(1);
    opts.max_batch = 64;
    base = Engine(*m, opts).generate(reqs);
  }
  for (int threads : {1, 2}) {
    for (int max_batch : {1, 4, 64}) {
      ThreadLimit limit(threads);
      opts.max_batch = max_batch;
      const auto out = Engine(*m, opts).generate(reqs);
      ASSERT_EQ(out.size(), base.size());
      for (size_t i = 0; i < out.size(); ++i) {
        EXPECT_EQ(out[i].completion_ids, base[i].completion_ids) << threads << " " << max_batch;
        EXPECT_EQ(out[i].sampled_logprobs, base[i].sampled_logprobs);
        EXPECT_EQ(out[i].routing, base[i].routing);
      }
    }
  }
}

// The routing recorded under speculation is what a training forward replays: the logprobs of
// the completion under the replayed experts equal the recorded ones.
TEST(Speculative, RecordedRoutingReplays) {
  auto m = mtp_model(policy::testing::tiny_v3_json());
  EngineOptions opts;
  opts.record_routing = true;
  opts.speculative = true;
  auto reqs = testing::requests_for(m->config().vocab_size, 3, 3, 12);
  testing::expect_logprobs_match_forward(*m, reqs, Engine(*m, opts).generate(reqs), true);
}

// The draft is the MTP module of training: Decoder::draft's logits for the last prompt row give
// the same log-probabilities as mtp_forward over the prompt and the token that follows it (a
// wrong draft would not change any output, only how many drafts are kept, so nothing else sees it).
// Both forms of the first pass: the prompt's rows together (the engine's) and as decode rows.
TEST(Speculative, DraftLogitsAreTheTrainingModulesPrediction) {
  for (const Json& j : mtp_configs()) {
    for (const bool prompt_pass : {true, false}) {
      auto m = mtp_model(j);
      Decoder dec(*m);
      const std::vector<int32_t> prompt = {3, 14, 1, 5, 9, 2, 6};
      SeqCache cache;
      cache.draft.on = true;
      std::vector<float> logits, draft;
      dec.prefill(prompt, cache, logits);
      dec.draft({&cache}, {std::vector<int32_t>(prompt.begin() + 1, prompt.end())}, draft,
                prompt_pass);
      const int64_t vocab = m->config().vocab_size;
      ASSERT_EQ(static_cast<int64_t>(draft.size()), vocab);
      double mx = draft[0];
      for (float v : draft) mx = std::max(mx, double(v));
      double z = 0;
      for (float v : draft) z += std::exp(double(v) - mx);
      const double lse = mx + std::log(z);
      for (int32_t next : {0, 4, 7}) {  // the token after the prompt: module row L-2's target
        std::vector<int32_t> seq = prompt;
        seq.push_back(next);
        seq.push_back(1);  // a target for row L-1 too; it does not move row L-2
        policy::Activations<float> acts;
        m->forward(policy::Batch::from_sequences({seq}), {}, acts);
        policy::MtpActs<float> ma;
        policy::mtp_forward(m->config(), *m->mtp(), m->params().data(), acts, ma);
        const size_t row = prompt.size() - 2;
        ASSERT_EQ(ma.targets[row], next);
        EXPECT_NEAR(ma.logprob[row], double(draft[next]) - lse, 2e-4)
            << "prompt pass " << prompt_pass << " " << j.dump();
      }
    }
  }
}

TEST(Speculative, RefusedWithoutAnMtpModuleAndForEngram) {
  auto plain = std::make_unique<Model<float>>(ModelConfig::from_json(policy::testing::tiny_v3_json()));
  EngineOptions opts;
  opts.speculative = true;
  try {
    Engine e(*plain, opts);
    FAIL() << "accepted a model without an MTP module";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_nextn_predict_layers"), std::string::npos) << e.what();
  }
  auto m = mtp_model(policy::testing::tiny_v3_json());
  opts.force_token = [](const Rollout&) { return std::optional<int32_t>(1); };
  EXPECT_THROW(Engine(*m, opts), Error);
}

}  // namespace
}  // namespace aha::rollout
