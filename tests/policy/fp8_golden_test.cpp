// FP8 checkpoints written by an independent Python emulator (tests/reference/gen_fp8_golden.py):
// aha's logprobs equal the reference forward of the dequantized weights, and aha quantizing the
// same fp32 weights (golden/deepseek_v3) writes exactly the emulator's bytes, tensor by tensor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "aha/core/safetensors.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/quantization.h"

namespace aha::policy {
namespace {

namespace fs = std::filesystem;

template <typename T>
double max_logprob_diff(const std::string& dir) {
  Json ref = load_json_file(dir + "/reference.json");
  auto seqs = ref["sequences"].get<std::vector<std::vector<int32_t>>>();
  auto want = ref["logprobs"].get<std::vector<std::vector<double>>>();
  auto model = load_model<T>(dir);
  Batch batch = Batch::from_sequences(seqs);
  Activations<T> acts;
  model->forward(batch, ForwardOptions{}, acts);
  double diff = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (size_t i = 0; i < want[s].size(); ++i) {
      diff = std::max(diff, std::abs(acts.logprob[batch.seq_starts[s] + i] - want[s][i]));
    }
  }
  return diff;
}

class Fp8Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Fp8Golden, LogprobsMatchTheDequantizedReference) {
  const std::string dir = std::string(AHA_TEST_DATA_DIR) + "/golden/" + GetParam();
  EXPECT_LE(max_logprob_diff<float>(dir), 1e-4);
  EXPECT_LE(max_logprob_diff<double>(dir), 1e-6);
}

TEST_P(Fp8Golden, QuantizingTheSameWeightsWritesTheReferenceBytes) {
  const std::string golden = std::string(AHA_TEST_DATA_DIR) + "/golden/";
  const std::string dir = golden + GetParam();
  auto fp32 = load_model<float>(golden + "deepseek_v3");  // the emulator's unquantized weights
  SaveOptions opts;
  opts.dtype = DType::kBF16;
  opts.fp8 = fp8_format_of(load_json_file(dir + "/config.json"));
  ASSERT_TRUE(opts.fp8);
  const fs::path out =
      fs::temp_directory_path() / ("aha_fp8_golden_" + GetParam() + std::to_string(::getpid()));
  save_model(*fp32, out.string(), opts);
  SafetensorsFile want(dir + "/model.safetensors"), got((out / "model.safetensors").string());
  ASSERT_EQ(want.tensors().size(), got.tensors().size());
  for (const auto& [name, w] : want.tensors()) {
    ASSERT_TRUE(got.tensors().count(name)) << name;
    const TensorInfo& g = got.tensors().at(name);
    EXPECT_EQ(g.dtype, w.dtype) << name;
    ASSERT_EQ(g.shape, w.shape) << name;
    EXPECT_EQ(std::memcmp(got.data(g), want.data(w), w.end - w.begin), 0) << name;
  }
  Json cfg = load_json_file((out / "config.json").string());
  EXPECT_EQ(cfg["quantization_config"],
            load_json_file(dir + "/config.json")["quantization_config"]);
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Policy, Fp8Golden,
                         ::testing::Values("deepseek_v3_fp8", "deepseek_v3_fp8_ue8m0"));

}  // namespace
}  // namespace aha::policy
