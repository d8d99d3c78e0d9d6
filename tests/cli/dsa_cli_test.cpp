// DeepSeek-V3.2 through the binary: a dry run on the published config.json lists the lightning
// indexer it would load, and a small-dsa checkpoint scores and generates.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "aha/core/config.h"
#include "run_aha.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
using testing::expect_one_error_line;
using testing::run_aha;

TEST(DsaCli, PublishedV32ConfigDryRunListsTheIndexer) {
  const fs::path dir = fs::temp_directory_path() / ("aha_dsa_dry_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "model");
  fs::copy_file(fs::path(AHA_TEST_DATA_DIR) / "deepseek_v32_config.json",
                dir / "model/config.json");
  std::ofstream(dir / "corpus.txt") << "What is 2 + 2? The answer is 4.\nNatalia sold clips.\n";
  ASSERT_EQ(run_aha("tokenizer train --corpus " + (dir / "corpus.txt").string() +
                    " --vocab-size 300 --out " + (dir / "model").string()).rc, 0);
  const std::string base = "train --config " AHA_SOURCE_DIR "/examples/deepseek-v2-lite/grpo.json"
                           " --dry-run --set model=" + (dir / "model").string() +
                           " --set data.train=" AHA_TEST_DATA_DIR "/gsm8k_sample.jsonl";
  const auto r = run_aha(base);
  ASSERT_EQ(r.rc, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["model_type"], "deepseek_v32");
  EXPECT_EQ(j["model"]["attention"]["dsa"], 61);
  const Json& ix = j["model"]["indexer"];
  EXPECT_EQ(ix["index_n_heads"], 64);
  EXPECT_EQ(ix["index_head_dim"], 128);
  EXPECT_EQ(ix["index_topk"], 2048);
  EXPECT_EQ(ix["tensors"], 62 * 5);  // 61 layers and the MTP block
  const Json want = Json::array({
      Json::array({"model.layers.0.self_attn.indexer.wq_b.weight", {8192, 1536}}),
      Json::array({"model.layers.0.self_attn.indexer.wk.weight", {128, 7168}}),
      Json::array({"model.layers.0.self_attn.indexer.k_norm.weight", {128}}),
      Json::array({"model.layers.0.self_attn.indexer.k_norm.bias", {128}}),
      Json::array({"model.layers.0.self_attn.indexer.weights_proj.weight", {64, 7168}})});
  EXPECT_EQ(ix["layer_0"], want);
  // A V3.2 config without its indexer keys is one error naming the key.
  Json cfg = load_json_file((dir / "model/config.json").string());
  cfg.erase("index_topk");
  save_json_file((dir / "model/config.json").string(), cfg);
  expect_one_error_line(run_aha(base), "index_topk");
  fs::remove_all(dir);
}

TEST(DsaCli, SmallDsaScoresAndGenerates) {
  const fs::path dir = fs::temp_directory_path() / ("aha_dsa_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "corpus.txt") << "What is 12 + 7? 19 <answer> 19 </answer>\n";
  ASSERT_EQ(run_aha("tokenizer train --corpus " + (dir / "corpus.txt").string() +
                    " --vocab-size 280 --out " + (dir / "tok").string()).rc, 0);
  const std::string model = (dir / "model").string();
  auto r = run_aha("init --preset small-dsa --seed 2 --tokenizer " + (dir / "tok").string() +
                   " --out " + model);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_aha("score --model " + model, "{\"ids\": [1, 2, 3, 4, 5, 6, 7, 8]}\n");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["token_logprobs"].size(), 8u);
  std::ofstream(dir / "prompts.jsonl") << R"({"prompt": "What is"})" << "\n";
  r = run_aha("generate --model " + model + " --prompts " + (dir / "prompts.jsonl").string() +
              " --n 2 --max-new-tokens 6");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha
