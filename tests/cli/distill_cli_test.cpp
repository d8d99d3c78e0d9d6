// The command-line contract of `aha distill sample` and `aha distill train`: --help, one
// `error:` line for bad configs, and a small sample -> train round trip through the binary.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "aha/core/config.h"
#include "run_aha.h"

namespace {

namespace fs = std::filesystem;
using aha::testing::expect_one_error_line;
using aha::testing::run_aha;

std::string temp(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("aha_distill_cli_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

TEST(DistillCli, HelpOnEveryCommand) {
  for (const char* c : {"distill sample --help", "distill train --help", "distill --help"}) {
    auto r = run_aha(c);
    EXPECT_EQ(r.rc, 0) << c << r.err;
    EXPECT_NE(r.out.find("usage: aha distill"), std::string::npos) << c;
  }
  EXPECT_NE(run_aha("--help").out.find("distill train"), std::string::npos);
}

TEST(DistillCli, BadConfigsAreOneErrorLine) {
  const std::string dir = temp("bad");
  fs::create_directories(dir);
  const std::string cfg = dir + "/c.json";
  std::ofstream(cfg)
      << R"({"output_dir": "x", "student_config": "llama", "data": {"train": "x"}, "stepz": 1})";
  expect_one_error_line(run_aha("distill train --config " + cfg), "stepz");
  std::ofstream(cfg)
      << R"({"teacher": "t", "output": "o", "data": {"train": "x"}, "samples_per_prompt": 0})";
  expect_one_error_line(run_aha("distill sample --config " + cfg), "samples_per_prompt");
  expect_one_error_line(run_aha("distill train --config " + dir + "/missing.json"), "missing.json");
  std::ofstream(cfg)
      << R"({"output_dir": ")" + dir +
             R"(/out", "student_config": "gpt9", "tokenizer": "nowhere", "data": {"train": "x"}})";
  expect_one_error_line(run_aha("distill train --config " + cfg), "tokenizer");
}

// Through the binary: a random teacher's samples are all counted (here all rejected), and a
// new Llama student trained on hand-written SFT rows is saved in HF layout.
TEST(DistillCli, SampleCountsThenTrainWritesAnHfStudent) {
  const std::string dir = temp("rt");
  fs::create_directories(dir);
  // run_aha redirects stdout itself: the corpus is its output (a `>` here would leave it empty).
  auto data = run_aha("make-data --task addition --n 300 --documents --split all --seed 1 --digits 1 1");
  ASSERT_EQ(data.rc, 0) << data.err;
  ASSERT_FALSE(data.out.empty());
  std::ofstream(dir + "/corpus.jsonl") << data.out;
  auto tk = run_aha("tokenizer train --corpus " + dir + "/corpus.jsonl --vocab-size 300 --out " +
                    dir + "/tok");
  ASSERT_EQ(tk.rc, 0) << tk.err;
  auto init =
      run_aha("init --preset tiny --seed 1 --tokenizer " + dir + "/tok --out " + dir + "/teacher");
  ASSERT_EQ(init.rc, 0) << init.err;
  std::ofstream(dir + "/s.json") << aha::Json{
      {"teacher", dir + "/teacher"},
      {"output", dir + "/sft.jsonl"},
      {"data",
       {{"train", "synthetic:addition"}, {"digits", {1, 1}}, {"split", "all"}, {"limit", 6}}},
      {"samples_per_prompt", 2},
      {"sampling",
       {{"max_new_tokens", 6}}}}.dump();
  auto s = run_aha("distill sample --config " + dir + "/s.json");
  ASSERT_EQ(s.rc, 0) << s.err;
  aha::Json st = aha::Json::parse(s.out);
  EXPECT_EQ(st["prompts"], 6);
  EXPECT_EQ(st["generated"], 12);
  int64_t sum = 0;
  for (const auto& [k, v] : st["counts"].items()) sum += v.get<int64_t>();
  EXPECT_EQ(sum, 12);
  {
    std::ofstream sft(dir + "/truth.jsonl");
    for (int a = 0; a < 10; ++a) {
      sft << aha::Json{{"prompt", "What is " + std::to_string(a) + " + 1?"},
                       {"completion", " <answer> " + std::to_string(a + 1) + " </answer>"}}
                 .dump()
          << "\n";
    }
  }
  std::ofstream(dir + "/t.json") << aha::Json{
      {"student_config", "llama"},
      {"tokenizer", dir + "/tok"},
      {"output_dir", dir + "/student"},
      {"data", {{"train", dir + "/truth.jsonl"}}},
      {"steps", 3},
      {"batch_tokens", 64}}.dump();
  auto t = run_aha("distill train --config " + dir + "/t.json");
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_NO_THROW(aha::Json::parse(t.out));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
    EXPECT_TRUE(fs::exists(dir + "/student/final/" + f)) << f;
  }
  EXPECT_EQ(aha::load_json_file(dir + "/student/final/config.json")["model_type"], "llama");
}

}  // namespace
