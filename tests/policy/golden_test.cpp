// Whole-model logprobs and gradients against an independent PyTorch implementation
// (tests/reference/gen_policy_golden.py), for DeepSeek-V3, DeepSeek-V2, Llama and Qwen2, and
// their mHC, NSA and Engram variants.
#include <gtest/gtest.h>

#include <cmath>

#include "aha/core/safetensors.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/mtp.h"

namespace aha::policy {
namespace {

struct Golden {
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<double>> coef, logprobs;
};

Golden read_golden(const std::string& dir) {
  Json j = load_json_file(dir + "/reference.json");
  Golden g;
  g.seqs = j["sequences"].get<std::vector<std::vector<int32_t>>>();
  g.coef = j["coef"].get<std::vector<std::vector<double>>>();
  g.logprobs = j["logprobs"].get<std::vector<std::vector<double>>>();
  return g;
}

template <typename T>
void check_golden(const std::string& name, double lp_tol, double grad_rel_tol) {
  const std::string dir = std::string(AHA_TEST_DATA_DIR) + "/golden/" + name;
  Golden g = read_golden(dir);
  auto model = load_model<T>(dir);
  Batch batch = Batch::from_sequences(g.seqs);
  Activations<T> acts;
  model->forward(batch, ForwardOptions{}, acts);
  std::vector<T> dlogprob(batch.n_tokens(), T(0));
  double max_diff = 0;
  for (size_t s = 0; s < g.seqs.size(); ++s) {
    for (size_t i = 0; i < g.logprobs[s].size(); ++i) {
      int64_t t = batch.seq_starts[s] + static_cast<int64_t>(i);
      max_diff = std::max(max_diff, std::abs(acts.logprob[t] - g.logprobs[s][i]));
      dlogprob[t] = static_cast<T>(g.coef[s][i]);
    }
  }
  EXPECT_LE(max_diff, lp_tol) << name << ": max |logprob - reference|";
  model->zero_grad();
  model->backward(acts, dlogprob.data(), nullptr, BalanceWeights{}, nullptr, nullptr);
  TensorArchive ref(dir + "/grads.safetensors");
  size_t checked = 0;
  for (const ParamEntry& e : model->table().entries()) {
    if (!e.trainable) {
      EXPECT_FALSE(ref.contains(e.name)) << e.name;
      continue;
    }
    // Autograd leaves no gradient for an expert that no token was routed to: it must be zero.
    std::vector<double> want(e.numel, 0.0);
    if (ref.contains(e.name)) {
      ref.read<double>(e.name, e.shape, want.data());
      ++checked;
    }
    double scale = 0, err = 0;
    for (size_t i = 0; i < e.numel; ++i) {
      scale = std::max(scale, std::abs(want[i]));
      err = std::max(err, std::abs(want[i] - double(model->grads()[e.offset + i])));
    }
    EXPECT_LE(err, grad_rel_tol * (scale + 1e-3)) << name << " grad of " << e.name;
  }
  EXPECT_EQ(checked, ref.names().size()) << "every reference gradient was compared";
}

class GoldenModel : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenModel, Fp32LogprobsAndGradsMatchReference) {
  check_golden<float>(GetParam(), 1e-4, 2e-3);
}
TEST_P(GoldenModel, Fp64LogprobsAndGradsMatchReference) {
  check_golden<double>(GetParam(), 1e-6, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Policy, GoldenModel,
                         ::testing::Values("deepseek_v3", "deepseek_v2", "llama", "qwen2",
                                           "deepseek_v3_mhc", "llama_mhc", "llama_nsa",
                                           "llama_engram", "deepseek_v3_mhc_engram"));

// DeepSeek-V3 with its MTP module: the module's logprobs of the token after next, and every
// gradient (trunk and module) of the main objective plus mtp_weight times the MTP loss, whose
// gradient reaches the trunk through the final hidden states.
template <typename T>
void check_mtp_golden(double lp_tol, double grad_rel_tol) {
  const std::string dir = std::string(AHA_TEST_DATA_DIR) + "/golden/deepseek_v3_mtp";
  const Json j = load_json_file(dir + "/reference.json");
  const Golden g = read_golden(dir);
  const auto want_mtp = j["mtp_logprobs"].get<std::vector<std::vector<double>>>();
  const double weight = j["mtp_weight"].get<double>();
  auto model = load_model<T>(dir);
  ASSERT_NE(model->mtp(), nullptr);
  Batch batch = Batch::from_sequences(g.seqs);
  Activations<T> acts;
  model->forward(batch, ForwardOptions{}, acts);
  MtpActs<T> m;
  mtp_forward(model->config(), *model->mtp(), model->params().data(), acts, m);
  size_t row = 0, compared = 0;
  double max_diff = 0;
  for (size_t s = 0; s < g.seqs.size(); ++s) {
    for (int64_t i = 0; i + 1 < static_cast<int64_t>(g.seqs[s].size()); ++i, ++row) {
      if (m.targets[row] < 0) continue;
      max_diff = std::max(max_diff, std::abs(double(m.logprob[row]) - want_mtp[s][i]));
      ++compared;
    }
  }
  EXPECT_EQ(compared, 5u + 10u);  // sequences of 7, 1 and 12 tokens
  EXPECT_LE(max_diff, lp_tol) << "max |MTP logprob - reference|";
  std::vector<T> dlogprob(batch.n_tokens(), T(0)), dh(acts.h_final.size(), T(0));
  for (size_t s = 0; s < g.seqs.size(); ++s) {
    for (size_t i = 0; i < g.coef[s].size(); ++i) {
      dlogprob[batch.seq_starts[s] + static_cast<int64_t>(i)] = static_cast<T>(g.coef[s][i]);
    }
  }
  model->zero_grad();
  mtp_backward(model->config(), *model->mtp(), model->params().data(), model->grads().data(), m,
               weight, dh.data());
  model->backward(acts, dlogprob.data(), nullptr, BalanceWeights{}, dh.data(), nullptr);
  TensorArchive ref(dir + "/grads.safetensors");
  for (const ParamEntry& e : model->table().entries()) {
    if (!e.trainable) continue;
    std::vector<double> want(e.numel, 0.0);
    if (ref.contains(e.name)) ref.read<double>(e.name, e.shape, want.data());
    double scale = 0, err = 0;
    for (size_t i = 0; i < e.numel; ++i) {
      scale = std::max(scale, std::abs(want[i]));
      err = std::max(err, std::abs(want[i] - double(model->grads()[e.offset + i])));
    }
    EXPECT_LE(err, grad_rel_tol * (scale + 1e-3)) << "grad of " << e.name;
  }
}

TEST(GoldenMtp, Fp64LogprobsAndGradsMatchReference) { check_mtp_golden<double>(1e-6, 1e-5); }
TEST(GoldenMtp, Fp32LogprobsAndGradsMatchReference) { check_mtp_golden<float>(1e-4, 2e-3); }

}  // namespace
}  // namespace aha::policy
