// The command-line contract: JSONL in and out, one `error:` line and a non-zero exit on bad
// input, --help everywhere.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aha/core/config.h"
#include "run_aha.h"

namespace {

namespace fs = std::filesystem;

using aha::testing::CmdResult;
using aha::testing::expect_one_error_line;

CmdResult run(const std::string& args, const std::string& input = "") {
  return aha::testing::run_aha(args, input);
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("aha_cli_" + name + "_" + std::to_string(::getpid())))
      .string();
}

TEST(Cli, InitThenScore) {
  std::string ck = temp_path("ck");
  fs::remove_all(ck);
  CmdResult init = run("init --preset tiny --seed 3 --out " + ck);
  ASSERT_EQ(init.rc, 0) << init.err;
  EXPECT_TRUE(fs::exists(ck + "/model.safetensors"));
  CmdResult score = run("score --model " + ck, "{\"ids\":[1,2,3]}\n\n{\"ids\":[4]}\n");
  ASSERT_EQ(score.rc, 0) << score.err;
  std::istringstream lines(score.out);
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  aha::Json a = aha::Json::parse(l1), b = aha::Json::parse(l2);
  ASSERT_EQ(a["token_logprobs"].size(), 3u);
  EXPECT_TRUE(a["token_logprobs"][0].is_null());
  EXPECT_LT(a["token_logprobs"][1].get<double>(), 0.0);
  EXPECT_EQ(b["token_logprobs"].size(), 1u);
  // Same seed, same weights: init is reproducible.
  std::string ck2 = temp_path("ck2");
  fs::remove_all(ck2);
  ASSERT_EQ(run("init --preset tiny --seed 3 --out " + ck2).rc, 0);
  EXPECT_EQ(run("score --model " + ck2, "{\"ids\":[1,2,3]}\n").out, l1 + "\n");
  fs::remove_all(ck);
  fs::remove_all(ck2);
}

TEST(Cli, BadInputGivesOneErrorLine) {
  std::string ck = temp_path("ck_bad");
  fs::remove_all(ck);
  ASSERT_EQ(run("init --preset tiny --out " + ck).rc, 0);
  expect_one_error_line(run("score --model " + ck, "{\"ids\":[1,512]}\n"), "outside the vocabulary");
  expect_one_error_line(run("score --model " + ck, "{\"ids\":[]}\n"), "empty ids");
  expect_one_error_line(run("score --model " + ck, "not json\n"), "not valid JSON");
  expect_one_error_line(run("score --model " + ck, "{\"text\":\"hi\"}\n"), "needs a tokenizer.json");
  expect_one_error_line(run("score --model " + ck, "{\"idz\":[1]}\n"), "expected {\"ids\"");
  expect_one_error_line(run("score --model /nonexistent"), "not a directory");
  expect_one_error_line(run("init --preset tiny"), "--out");
  expect_one_error_line(run("init --preset huge --out " + ck), "unknown preset");
  std::string cfg = temp_path("cfg.json");
  std::ofstream(cfg) << "{\"model_type\": \"bert\"}";
  expect_one_error_line(run("init --config " + cfg + " --out " + ck), "unknown model_type");
  std::ofstream(cfg) << "{\"model_type\": ";
  expect_one_error_line(run("init --config " + cfg + " --out " + ck), "not valid JSON");
  expect_one_error_line(run("frobnicate"), "unknown command");
  // A failed init leaves the old checkpoint in place.
  EXPECT_TRUE(fs::exists(ck + "/model.safetensors"));
  fs::remove_all(ck);
  fs::remove(cfg);
}

TEST(Cli, HelpOnEveryCommand) {
  for (const char* cmd : {"init", "score", "bench gemm", "bench train", "version"}) {
    CmdResult r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.rc, 0) << cmd;
    EXPECT_NE(r.out.find("usage: aha"), std::string::npos) << cmd << ": " << r.out;
  }
}

}  // namespace

namespace {

// The DeepSeek-V2-Lite example passes a dry run (config, tokenizer, GSM8K data, rewards) without
// weights, and a missing dataset is one clear error.
TEST(Cli, RealCheckpointExampleDryRun) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_cli_dry_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "model");
  fs::copy_file(fs::path(AHA_SOURCE_DIR) / "examples/deepseek-v2-lite/config.json",
                dir / "model/config.json");
  std::ofstream(dir / "corpus.txt") << "What is 2 + 2? The answer is 4.\nNatalia sold clips.\n";
  ASSERT_EQ(run("tokenizer train --corpus " + (dir / "corpus.txt").string() +
                " --vocab-size 300 --out " + (dir / "model").string()).rc, 0);
  const std::string base = "train --config " AHA_SOURCE_DIR "/examples/deepseek-v2-lite/grpo.json"
                           " --dry-run --set model=" + (dir / "model").string();
  CmdResult ok = run(base + " --set data.train=" AHA_TEST_DATA_DIR "/gsm8k_sample.jsonl");
  ASSERT_EQ(ok.rc, 0) << ok.err;
  aha::Json j = aha::Json::parse(ok.out);
  EXPECT_EQ(j["model_type"], "deepseek_v2");
  EXPECT_EQ(j["examples"], 2);
  EXPECT_NE(j["first_prompt"].get<std::string>().find("Natalia"), std::string::npos);
  // What it would load, counted from the config alone (no weights in this directory).
  EXPECT_EQ(j["model"]["weights"], "none found (config only)");
  EXPECT_GT(j["model"]["parameters"].get<int64_t>(), 15'000'000'000);  // V2-Lite: 15.7B
  EXPECT_EQ(j["model"]["attention"]["mla"], 27);
  expect_one_error_line(run(base + " --set data.train=/nonexistent.jsonl"), "cannot open dataset");
  expect_one_error_line(run(base + " --set grpo.typo=1"), "unknown key 'typo'");
}

}  // namespace

namespace {

// The countdown example passes a dry run, and its evaluation command reads countdown data.
TEST(Cli, CountdownExampleDryRun) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_cli_countdown_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  CmdResult data = run("make-data --task countdown --numbers 3 3 --max-number 20 --n 50 --documents "
                       "--template 'User: {prompt} Assistant:'");
  ASSERT_EQ(data.rc, 0) << data.err;
  std::ofstream(dir / "corpus.jsonl") << data.out;
  ASSERT_EQ(run("tokenizer train --corpus " + (dir / "corpus.jsonl").string() +
                " --vocab-size 300 --out " + (dir / "tok").string()).rc, 0);
  ASSERT_EQ(run("init --preset tiny --tokenizer " + (dir / "tok").string() + " --out " +
                (dir / "model").string()).rc, 0);
  CmdResult ok = run("train --config " AHA_SOURCE_DIR "/examples/countdown/grpo.json --dry-run --set model=" +
                     (dir / "model").string());
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_NE(ok.out.find("Using the numbers"), std::string::npos) << ok.out;
  const aha::Json plan = aha::Json::parse(ok.out)["model"];
  EXPECT_EQ(plan["weights"]["missing"], 0) << ok.out;
  EXPECT_EQ(plan["weights"]["dtypes"]["F32"], plan["tensors"]) << ok.out;
  // A config that implies an MTP module the checkpoint does not hold fails naming a tensor.
  aha::Json cfg = aha::load_json_file((dir / "model/config.json").string());
  cfg["num_nextn_predict_layers"] = 1;
  aha::save_json_file((dir / "model/config.json").string(), cfg);
  expect_one_error_line(run("train --config " AHA_SOURCE_DIR "/examples/countdown/grpo.json "
                            "--dry-run --set model=" + (dir / "model").string()),
                        "model.layers.4.");
  cfg.erase("num_nextn_predict_layers");
  aha::save_json_file((dir / "model/config.json").string(), cfg);
  CmdResult ev = run("eval --model " + (dir / "model").string() + " --data synthetic:countdown --numbers 3 3 "
                     "--limit 4 --n 1 --max-new-tokens 4 --reward countdown,format --template '{prompt}'");
  ASSERT_EQ(ev.rc, 0) << ev.err;
  EXPECT_NE(ev.out.find("\"countdown\""), std::string::npos) << ev.out;
  // --task names a synthetic task (the same problems as --data synthetic:NAME), --input a file
  const std::string model = " --model " + (dir / "model").string();
  const std::string rest = " --numbers 3 3 --limit 4 --n 1 --max-new-tokens 4 "
                           "--reward countdown,format --template '{prompt}'";
  CmdResult by_task = run("eval" + model + " --task countdown" + rest);
  ASSERT_EQ(by_task.rc, 0) << by_task.err;
  EXPECT_EQ(by_task.out, ev.out);
  expect_one_error_line(run("eval" + model + " --task countdown --data synthetic:countdown" + rest),
                        "give the problems once");
  expect_one_error_line(run("eval" + model + rest), "--input F.jsonl, or --task");
  expect_one_error_line(run("eval" + model + " --task data.jsonl" + rest), "a file goes to --input");
}

}  // namespace
