// data.template chat through the binary: `aha train --dry-run` shows the first prompt rendered by
// the checkpoint's chat template (the one `aha tokenizer train` writes), `aha generate
// --template chat` samples from it, and a checkpoint without a template is one error line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aha/core/config.h"
#include "run_aha.h"

namespace {

namespace fs = std::filesystem;
using aha::testing::CmdResult;
using aha::testing::expect_one_error_line;
using aha::testing::run_aha;

TEST(ChatTemplateCli, DataTemplateChatRendersThroughTheCheckpointTemplate) {
  fs::path dir = fs::temp_directory_path() / ("aha_chat_cli_" + std::to_string(::getpid()));
  aha::testing::make_tiny_model(dir);
  const std::string model = (dir / "model").string();
  const std::string base = "train --config " AHA_SOURCE_DIR "/examples/deepseek-v2-lite/grpo.json"
                           " --dry-run --set data.train=" AHA_TEST_DATA_DIR "/gsm8k_sample.jsonl"
                           " --set model=" + model;
  CmdResult ok = run_aha(base + " --set data.template=chat");
  ASSERT_EQ(ok.rc, 0) << ok.err;
  // The trained tokenizer adds BOS itself, so the template's bos_token is not in the text.
  const std::string first = aha::Json::parse(ok.out)["first_prompt"];
  EXPECT_EQ(first.rfind("<｜User｜>", 0), 0u) << first;
  EXPECT_TRUE(first.ends_with("<｜Assistant｜>")) << first;
  EXPECT_NE(first.find("Natalia"), std::string::npos) << first;

  std::ofstream(dir / "prompts.jsonl") << R"({"prompt": "What is 12 + 7?"})" << "\n";
  const std::string gen = "generate --model " + model + " --prompts " +
                          (dir / "prompts.jsonl").string() + " --n 2 --max-new-tokens 4";
  CmdResult sampled = run_aha(gen + " --template chat");
  ASSERT_EQ(sampled.rc, 0) << sampled.err;
  EXPECT_EQ(std::count(sampled.out.begin(), sampled.out.end(), '\n'), 2) << sampled.out;

  // Without a chat template: one error line naming it, for train and generate alike.
  aha::Json config = aha::Json::parse(std::ifstream(dir / "model/tokenizer_config.json"));
  config.erase("chat_template");
  std::ofstream(dir / "model/tokenizer_config.json") << config.dump();
  expect_one_error_line(run_aha(base + " --set data.template=chat"), "no chat template");
  expect_one_error_line(run_aha(gen + " --template chat"), "no chat template");
  // Only "chat" needs it.
  EXPECT_EQ(run_aha(base).rc, 0);
  // A broken template: one error line naming the template line.
  config["chat_template"] = "{{ bos_token }}\n{% for m in messages %}\n{{ m.content | nosuch }}{% endfor %}";
  std::ofstream(dir / "model/tokenizer_config.json") << config.dump();
  expect_one_error_line(run_aha(base + " --set data.template=chat"), "line 3: unknown filter 'nosuch'");
  fs::remove_all(dir);
}

}  // namespace
