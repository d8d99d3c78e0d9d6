// The multi-token-prediction loss beside GRPO's (grpo.mtp_weight; DeepSeek-V3 §2.2): the MTP
// module learns to predict each policy token of the completions from the trunk's state two
// tokens back, and its gradient reaches the trunk as in pretraining. Off by default: the
// rollouts are the policy's own samples, so this is self-distillation of the draft head (what
// speculative decoding needs), not extra signal about the reward.
#include "aha/policy/mtp.h"
#include "trainer_state.h"

namespace aha::grpo {

std::vector<uint8_t> Trainer::State::mtp_rows(const std::vector<Rollout>& rs,
                                              const std::vector<size_t>& idx,
                                              const std::vector<int64_t>& offs, int64_t n,
                                              double& count) const {
  // MTP row i (main row i and token i + 1) predicts token i + 2, which main row i + 1 predicts:
  // kept when that is a policy token of a completion, and row i is in the same sequence.
  std::vector<uint8_t> keep(static_cast<size_t>(n), 0);
  count = 0;
  for (size_t k = 0; k < idx.size(); ++k) {
    const Rollout& r = rs[idx[k]];
    const int64_t seq_start = offs[k] - (static_cast<int64_t>(r.prompt_ids.size()) - 1);
    for (int64_t j = 0; j < r.n(); ++j) {
      const int64_t row = offs[k] + j - 1;
      if (!r.in_loss(j) || row < seq_start) continue;
      keep[row] = 1;
      count += 1;
    }
  }
  return keep;
}

std::vector<float> Trainer::State::mtp_term(const policy::Activations<float>& acts,
                                            const std::vector<uint8_t>& keep, double global_rows,
                                            double& nll) {
  return policy::mtp_term(
      policy->config(), *policy->mtp(), policy->params().data(), policy->grads().data(), acts,
      [&](int64_t main_row) { return keep[main_row] != 0; }, cfg.grpo.mtp_weight, global_rows,
      nll);
}

}  // namespace aha::grpo
