// FP8 checkpoints through the binary: `aha init --dtype FP8`, `aha convert` both ways, `aha score`
// on FP8 equals the dequantized F32 checkpoint, and bad FP8 options are one `error:` line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "aha/core/config.h"
#include "policy/checkpoint_helpers.h"
#include "run_aha.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
using policy::testing::read_bytes;
using testing::expect_one_error_line;
using testing::run_aha;

TEST(Fp8Cli, InitConvertScore) {
  const fs::path dir = fs::temp_directory_path() / ("aha_fp8_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string a = (dir / "fp8").string(), b = (dir / "f32").string(),
                    c = (dir / "fp8_again").string(), d = (dir / "ue8m0").string();
  auto r = run_aha("init --preset tiny --seed 3 --dtype FP8 --out " + a);
  ASSERT_EQ(r.rc, 0) << r.err;
  Json cfg = load_json_file(a + "/config.json");
  EXPECT_EQ(cfg["quantization_config"]["weight_block_size"], Json({128, 128}));
  EXPECT_EQ(cfg["quantization_config"]["quant_method"], "fp8");

  // Dequantized to F32 and quantized again: scores equal, bytes equal.
  r = run_aha("convert --model " + a + " --out " + b + " --dtype F32");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_FALSE(load_json_file(b + "/config.json").contains("quantization_config"));
  r = run_aha("convert --model " + b + " --out " + c + " --dtype FP8");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(read_bytes(fs::path(a) / "model.safetensors"),
            read_bytes(fs::path(c) / "model.safetensors"));
  const std::string seqs = "{\"ids\": [1, 2, 3, 4, 5, 6, 7, 8]}\n{\"ids\": [9, 3, 9, 3]}\n";
  auto sa = run_aha("score --model " + a, seqs), sb = run_aha("score --model " + b, seqs);
  ASSERT_EQ(sa.rc, 0) << sa.err;
  ASSERT_EQ(sb.rc, 0) << sb.err;
  EXPECT_EQ(sa.out, sb.out);
  EXPECT_NE(sa.out.find("token_logprobs"), std::string::npos);

  // Another block size and power-of-two scales.
  r = run_aha("convert --model " + b + " --out " + d +
              " --dtype FP8 --fp8-block 64,48 --fp8-scale-fmt ue8m0");
  ASSERT_EQ(r.rc, 0) << r.err;
  cfg = load_json_file(d + "/config.json");
  EXPECT_EQ(cfg["quantization_config"]["weight_block_size"], Json({64, 48}));
  EXPECT_EQ(cfg["quantization_config"]["scale_fmt"], "ue8m0");
  EXPECT_LT(fs::file_size(fs::path(a) / "model.safetensors"),
            fs::file_size(fs::path(b) / "model.safetensors") / 2);

  // Bad input: one error line naming the option or key.
  expect_one_error_line(run_aha("convert --model " + a + " --out " + c + " --dtype FP4"),
                        "--dtype");
  expect_one_error_line(
      run_aha("convert --model " + a + " --out " + c + " --dtype FP8 --fp8-block 128"),
      "--fp8-block");
  expect_one_error_line(
      run_aha("convert --model " + a + " --out " + c + " --dtype BF16 --fp8-scale-fmt ue8m0"),
      "need --dtype FP8");
  cfg = load_json_file(a + "/config.json");
  cfg["quantization_config"]["quant_method"] = "awq";
  save_json_file(a + "/config.json", cfg);
  expect_one_error_line(run_aha("score --model " + a, seqs), "quant_method 'awq'");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha
