// Deterministic requests for engine tests: n_prompts short prompts, `group` samples each.
#pragma once

#include <vector>

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

}  // namespace aha::rollout::testing
