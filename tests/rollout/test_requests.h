// Deterministic requests for engine tests: n_prompts short prompts, `group` samples each.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "aha/policy/model.h"
#include "aha/rollout/engine.h"

namespace aha::rollout::testing {

inline std::vector<Request> requests_for(int vocab, int n_prompts, int group, int max_new) {
  std::vector<Request> reqs;
  for (int p = 0; p < n_prompts; ++p) {
    Request r;
    for (int t = 0; t < 3 + p % 4; ++t) r.prompt.push_back((p * 7 + t * 3) % vocab);
    r.n = group;
    r.params.max_new_tokens = max_new;
    r.params.temperature = 1.0;
    r.params.stop_token_ids = {0};
    reqs.push_back(r);
  }
  return reqs;
}

// prompt + completion of one rollout.
inline std::vector<int32_t> sequence_of(const std::vector<Request>& reqs, const Rollout& r) {
  std::vector<int32_t> seq = reqs[r.group].prompt;
  seq.insert(seq.end(), r.completion_ids.begin(), r.completion_ids.end());
  return seq;
}

// Every recorded sampled logprob equals the training forward's (replaying `replay` when given:
// the rollout's routing, completed for the last token, which was never fed).
inline void expect_logprobs_match_forward(const policy::Model<float>& m,
                                          const std::vector<Request>& reqs,
                                          const std::vector<Rollout>& out,
                                          bool replay_routing = false) {
  const int K = m.config().num_experts_per_tok;
  for (const Rollout& comp : out) {
    ASSERT_NE(comp.finish_reason, "error") << comp.error;
    const std::vector<int32_t> seq = sequence_of(reqs, comp);
    policy::ForwardOptions fo;
    Routing replay;
    if (replay_routing) {
      ASSERT_EQ(comp.routing.size(), 1u);
      ASSERT_EQ(comp.routing[0].size(), (seq.size() - 1) * K);
      replay = comp.routing;
      replay[0].resize(seq.size() * K, -1);  // the last token: routed afresh
      fo.replay_topk = &replay;
    }
    policy::Activations<float> acts;
    m.forward(policy::Batch::from_sequences({seq}), fo, acts);
    const size_t p = reqs[comp.group].prompt.size();
    for (size_t i = 0; i < comp.completion_ids.size(); ++i) {
      EXPECT_NEAR(comp.sampled_logprobs[i], acts.logprob[p - 1 + i], 1e-4)
          << m.config().type_name() << " token " << i;
    }
  }
}

}  // namespace aha::rollout::testing
