// DeepSeek-V3.2's sparse attention against an independent PyTorch implementation
// (tests/reference/dsa_ref.py, via gen_policy_golden.py deepseek_v32): a tiny checkpoint with
// index_topk 8 over sequences of 48 and 6 tokens, whose every k-th and (k+1)-th index scores
// differ by more than 1e-4. The logprobs agree, and every layer selects the same keys per token.
#include <gtest/gtest.h>

#include <cmath>

#include "aha/core/config.h"
#include "aha/policy/checkpoint.h"

namespace aha::policy {
namespace {

template <typename T>
void check_dsa_golden(double lp_tol) {
  const std::string dir = std::string(AHA_TEST_DATA_DIR) + "/golden/deepseek_v32";
  const Json j = load_json_file(dir + "/reference.json");
  const auto seqs = j["sequences"].get<std::vector<std::vector<int32_t>>>();
  const auto want_lp = j["logprobs"].get<std::vector<std::vector<double>>>();
  // [sequence][layer][token]: the ascending key positions the reference kept.
  using Keys = std::vector<int32_t>;
  const auto want_sel = j["selected"].get<std::vector<std::vector<std::vector<Keys>>>>();
  auto model = load_model<T>(dir);
  ASSERT_EQ(model->layers()[0].attn->kind(), AttentionKind::kDsa);
  const Batch batch = Batch::from_sequences(seqs);
  Activations<T> acts;
  model->forward(batch, ForwardOptions{}, acts);
  double max_diff = 0;
  int sparse_rows = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t first = batch.seq_starts[s];
    for (size_t i = 0; i < want_lp[s].size(); ++i) {
      max_diff = std::max(max_diff, std::abs(double(acts.logprob[first + i]) - want_lp[s][i]));
    }
    for (int l = 0; l < model->config().num_hidden_layers; ++l) {
      for (size_t i = 0; i < seqs[s].size(); ++i) {
        const auto& got = acts.layers[l].attn.selected[first + i];
        EXPECT_EQ(got, want_sel[s][l][i]) << "sequence " << s << " layer " << l << " token " << i;
        sparse_rows += got.size() < i + 1;
      }
    }
  }
  EXPECT_EQ(sparse_rows, 2 * (48 - 8));  // every row past index_topk is sparse, in both layers
  EXPECT_LE(max_diff, lp_tol) << "max |logprob - reference|";
}

TEST(GoldenDsa, Fp32LogprobsAndSelectionsMatchReference) { check_dsa_golden<float>(1e-4); }
// fp64: the RoPE frequencies are fp32 on both sides but rounded along different paths (1 ulp).
TEST(GoldenDsa, Fp64LogprobsAndSelectionsMatchReference) { check_dsa_golden<double>(1e-6); }

}  // namespace
}  // namespace aha::policy
