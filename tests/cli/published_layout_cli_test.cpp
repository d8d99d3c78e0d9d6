// DeepSeek-V3.2 as published: FP8 block-quantized weights, a multi-token-prediction module and
// sparse attention in one checkpoint, taken by every command: score, generate (speculative,
// drafting with the MTP module), GRPO training with the MTP loss, distillation's sampling from
// it as a teacher and SFT of it as a student. Training checkpoints keep full-precision weights
// (a resume must equal a straight run); `aha convert --dtype FP8` quantizes them back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "aha/core/config.h"
#include "run_aha.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
using testing::run_aha;

std::string dtype_of(const fs::path& ckpt, const std::string& tensor) {
  std::ifstream f(ckpt / "model.safetensors", std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  f.read(header.data(), static_cast<std::streamsize>(n));
  return Json::parse(header).at(tensor).at("dtype").get<std::string>();
}

TEST(PublishedLayoutCli, Fp8MtpDsaCheckpointThroughEveryCommand) {
  const fs::path dir = fs::temp_directory_path() / ("aha_v32_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto data = run_aha("make-data --task addition --n 200 --documents --split all --seed 1 --digits 1 1");
  ASSERT_EQ(data.rc, 0) << data.err;
  std::ofstream(dir / "corpus.jsonl") << data.out;
  ASSERT_EQ(run_aha("tokenizer train --corpus " + (dir / "corpus.jsonl").string() +
                    " --vocab-size 300 --out " + (dir / "tok").string()).rc, 0);
  auto r = run_aha("init --preset tiny --out " + (dir / "plain").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  Json cfg = load_json_file((dir / "plain/config.json").string());
  cfg.update(Json{{"model_type", "deepseek_v32"}, {"architectures", {"DeepseekV32ForCausalLM"}},
                  {"q_lora_rank", 32}, {"index_n_heads", 2}, {"index_head_dim", 16},
                  {"index_topk", 8}, {"num_nextn_predict_layers", 1},
                  {"quantization_config", {{"quant_method", "fp8"}, {"fmt", "e4m3"},
                                           {"activation_scheme", "dynamic"},
                                           {"weight_block_size", {32, 32}}}}});
  save_json_file((dir / "cfg.json").string(), cfg);
  const std::string model = (dir / "model").string();
  r = run_aha("init --config " + (dir / "cfg.json").string() + " --dtype FP8 --seed 2 --tokenizer " +
              (dir / "tok").string() + " --out " + model);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string wq = "model.layers.1.self_attn.indexer.wq_b.weight";
  EXPECT_EQ(dtype_of(model, wq), "F8_E4M3");
  EXPECT_EQ(dtype_of(model, "model.layers.4.self_attn.q_a_proj.weight"), "F8_E4M3");
  EXPECT_EQ(dtype_of(model, "model.layers.4.eh_proj.weight"), "BF16");  // as DeepSeek ships it

  r = run_aha("score --model " + model, "{\"ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}\n");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["token_logprobs"].size(), 12u);

  std::ofstream(dir / "prompts.jsonl") << R"({"prompt": "What is 3 + 4?"})" << "\n";
  const std::string gen = "generate --model " + model + " --prompts " +
                          (dir / "prompts.jsonl").string() + " --n 3 --max-new-tokens 8 --seed 4";
  auto plain = run_aha(gen + " --temperature 0");
  auto spec = run_aha(gen + " --temperature 0 --speculative");
  ASSERT_EQ(spec.rc, 0) << spec.err;
  EXPECT_NE(spec.err.find("speculative:"), std::string::npos) << spec.err;
  EXPECT_EQ(spec.out, plain.out);  // greedy: the same tokens and logprobs

  const std::string out = (dir / "grpo").string();
  r = run_aha("train --config " AHA_SOURCE_DIR "/examples/countdown/grpo.json --set model=" + model +
              " --set output_dir=" + out +
              " --set grpo.steps=1 --set grpo.prompts_per_step=2 --set grpo.group_size=2"
              " --set sampling.max_new_tokens=6 --set grpo.speculative=true"
              " --set grpo.mtp_weight=0.1 --set grpo.keep_routing=true --set grpo.save_every=1");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(dtype_of(fs::path(out) / "checkpoint-1", wq), "F32");
  const std::string fp8 = (dir / "trained_fp8").string();
  r = run_aha("convert --model " + out + "/checkpoint-1 --out " + fp8 + " --dtype FP8 --fp8-block 32,32");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(dtype_of(fp8, wq), "F8_E4M3");
  EXPECT_EQ(dtype_of(fp8, "model.layers.4.self_attn.q_a_proj.weight"), "F8_E4M3");
  r = run_aha("score --model " + fp8, "{\"ids\": [1, 2, 3, 4, 5, 6]}\n");
  ASSERT_EQ(r.rc, 0) << r.err;

  std::ofstream(dir / "s.json") << Json{
      {"teacher", model}, {"output", (dir / "sft.jsonl").string()},
      {"data", {{"train", "synthetic:addition"}, {"digits", {1, 1}}, {"split", "all"}, {"limit", 3}}},
      {"samples_per_prompt", 2}, {"sampling", {{"max_new_tokens", 6}}}}.dump();
  r = run_aha("distill sample --config " + (dir / "s.json").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["generated"], 6);
  {
    std::ofstream sft(dir / "truth.jsonl");
    for (int a = 0; a < 6; ++a) {
      sft << Json{{"prompt", "What is " + std::to_string(a) + " + 1?"},
                  {"completion", " <answer> " + std::to_string(a + 1) + " </answer>"}}.dump()
          << "\n";
    }
  }
  std::ofstream(dir / "t.json") << Json{
      {"student", model}, {"output_dir", (dir / "student").string()},
      {"data", {{"train", (dir / "truth.jsonl").string()}}}, {"steps", 2},
      {"batch_tokens", 64}, {"mtp_weight", 0.1}}.dump();
  r = run_aha("distill train --config " + (dir / "t.json").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "student/final/model.safetensors"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha
