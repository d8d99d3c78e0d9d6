// `aha generate` and `aha eval` sample tool-using episodes from the command line: with an
// environment every completion starts with its reset observation (out of the loss), and bad
// tool options are one error line naming the option or key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aha/core/config.h"
#include "run_aha.h"

namespace {

namespace fs = std::filesystem;
using aha::Json;
using aha::testing::CmdResult;
using aha::testing::expect_one_error_line;
using aha::testing::run_aha;

TEST(ToolOptionsCli, GenerateAndEvalRunEpisodes) {
  const fs::path dir = fs::temp_directory_path() / ("aha_tool_cli_" + std::to_string(::getpid()));
  aha::testing::make_tiny_model(dir);
  const std::string model = (dir / "model").string();
  // An environment that opens every episode with "12 + 7?" and rewards any action.
  const fs::path env = dir / "env.sh";
  std::ofstream(env) << "#!/bin/bash\nread -r line; echo '{\"observation\": \" 12 + 7?\"}'\n"
                        "while read -r line; do echo '{\"observation\": \"ok\", \"reward\": 1}'; done\n";
  fs::permissions(env, fs::perms::owner_all);
  const Json rollout = {{"tools", {{{"name", "env"}, {"command", env.string()}, {"environment", true}}}},
                        {"tool_stop", {{"open", "<a>"}, {"close", "</a>"}, {"tool", "env"}}}};
  std::ofstream(dir / "rollout.json") << rollout.dump();
  std::ofstream(dir / "prompts.jsonl") << R"({"prompt": "What is"})" << "\n";
  CmdResult gen = run_aha("generate --model " + model + " --prompts " +
                          (dir / "prompts.jsonl").string() + " --n 2 --max-new-tokens 12" +
                          " --rollout @" + (dir / "rollout.json").string());
  ASSERT_EQ(gen.rc, 0) << gen.err;
  int lines = 0;
  for (size_t at = 0, nl; (nl = gen.out.find('\n', at)) != std::string::npos; at = nl + 1, ++lines) {
    const Json c = Json::parse(gen.out.substr(at, nl - at));
    ASSERT_TRUE(c.contains("turns")) << c.dump();
    EXPECT_EQ(c["turns"][0]["tool"], "env");
    EXPECT_EQ(c["turns"][0]["text"], " 12 + 7?");
    EXPECT_EQ(c["text"].get<std::string>().rfind(" 12 + 7?", 0), 0u) << c["text"];
    EXPECT_EQ(c["loss_mask"][0], 0);
    EXPECT_EQ(c["loss_mask"].size(), c["ids"].size());
  }
  EXPECT_EQ(lines, 2);

  std::ofstream(dir / "problems.jsonl") << R"({"prompt": "What is", "answer": "19"})" << "\n";
  CmdResult ev = run_aha("eval --model " + model + " --input " + (dir / "problems.jsonl").string() +
                         " --template '{prompt}' --n 2 --max-new-tokens 8 --reward env,math" +
                         " --rollout @" + (dir / "rollout.json").string());
  ASSERT_EQ(ev.rc, 0) << ev.err;
  const Json result = Json::parse(ev.out);
  EXPECT_TRUE(result.contains("tool_calls_mean")) << result.dump();

  const std::string base = "generate --model " + model + " --prompts " +
                           (dir / "prompts.jsonl").string() + " --max-new-tokens 4";
  expect_one_error_line(run_aha(base + " --tools abacus"), "rollout.tools[0]: unknown tool \"abacus\"");
  expect_one_error_line(run_aha(base + " --tools calculator"), "rollout.tool_stop");
  expect_one_error_line(run_aha(base + " --rollout '{bad'"), "--rollout must be a JSON object");
  expect_one_error_line(run_aha("eval --model " + model + " --task addition --tools calculator" +
                                " --tool-stop tool_call --max-turns -2"),
                        "rollout.max_turns must be >= 0");
  fs::remove_all(dir);
}

}  // namespace
