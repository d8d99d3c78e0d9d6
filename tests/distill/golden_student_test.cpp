// The distilled students aha saves (tests/data/golden/distill_llama, distill_qwen2: written by
// `aha distill train`, HF layout) score sequences exactly as an independent PyTorch Llama/Qwen2
// implementation reading the same files does (tests/reference/gen_distill_golden.py).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "aha/policy/checkpoint.h"
#include "aha/tokenizer/tokenizer.h"

namespace aha::policy {
namespace {

class GoldenStudent : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenStudent, LogprobsMatchTheReferenceImplementation) {
  const std::string dir = std::string(AHA_TEST_DATA_DIR) + "/golden/" + GetParam();
  Json ref = load_json_file(dir + "/reference.json");
  auto seqs = ref["sequences"].get<std::vector<std::vector<int32_t>>>();
  auto want = ref["logprobs"].get<std::vector<std::vector<double>>>();
  auto model = load_model<float>(dir);
  EXPECT_FALSE(model->config().is_mla());
  Batch b = Batch::from_sequences(seqs);
  Activations<float> acts;
  model->forward(b, ForwardOptions{}, acts);
  double max_diff = 0;
  size_t n = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    ASSERT_EQ(want[s].size(), seqs[s].size() - 1);
    for (size_t i = 0; i < want[s].size(); ++i, ++n) {
      max_diff =
          std::max(max_diff, std::abs(double(acts.logprob[b.seq_starts[s] + i]) - want[s][i]));
    }
  }
  EXPECT_GT(n, 20u);
  EXPECT_LE(max_diff, 1e-4) << GetParam() << ": max |logprob - reference|";
  // The tokenizer files other tools need are saved with the weights.
  EXPECT_TRUE(std::filesystem::exists(dir + "/tokenizer.json"));
  EXPECT_NO_THROW(tokenizer::Tokenizer::load(dir));
}

INSTANTIATE_TEST_SUITE_P(Distill, GoldenStudent,
                         ::testing::Values("distill_llama", "distill_qwen2"));

}  // namespace
}  // namespace aha::policy
