// `aha tokenizer train`, `aha tokenize` (and --decode) and `aha bench tokenize` end to end:
// JSONL in and out, one `error:` line on bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "aha/core/config.h"
#include "run_aha.h"

namespace {

namespace fs = std::filesystem;

using Result = aha::testing::CmdResult;

Result aha(const std::string& args, const std::string& input = "") {
  return aha::testing::run_aha(args, input);
}

void expect_error(const Result& r, const std::string& needle) {
  aha::testing::expect_one_error_line(r, needle);
}

class TokenizeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (fs::temp_directory_path() / ("aha_tokcli_tok_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
    std::ofstream corpus(dir_ + "/corpus.txt");
    for (int i = 0; i < 500; ++i)
      corpus << "What is " << i << " + " << 3 * i << "? <think> " << i << " + " << 3 * i << " = "
             << 4 * i << " </think> <answer> " << 4 * i << " </answer>\n";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string dir_;
};
std::string TokenizeCli::dir_;

TEST_F(TokenizeCli, TrainTokenizeDecodeRoundTrip) {
  Result train = aha("tokenizer train --corpus " + dir_ + "/corpus.txt --vocab-size 400 --out " +
                     dir_ + "/tok");
  ASSERT_EQ(train.rc, 0) << train.err;
  EXPECT_EQ(aha::Json::parse(train.out)["vocab_size"], 400);
  std::vector<std::string> texts = {"What is 2 + 2?", "中文 😀 \"quoted\"\n\ttab", ""};
  std::string input;
  for (const auto& t : texts) input += aha::Json{{"text", t}}.dump() + "\n";
  Result enc = aha("tokenize --tokenizer " + dir_ + "/tok", input);
  ASSERT_EQ(enc.rc, 0) << enc.err;
  Result dec = aha("tokenize --decode --tokenizer " + dir_ + "/tok", enc.out);
  ASSERT_EQ(dec.rc, 0) << dec.err;
  std::istringstream lines(dec.out);
  std::string line;
  for (const auto& t : texts) {
    ASSERT_TRUE(std::getline(lines, line));
    EXPECT_EQ(aha::Json::parse(line)["text"], t);
  }
  Result bos = aha("tokenize --add-special --tokenizer " + dir_ + "/tok", input);
  EXPECT_EQ(aha::Json::parse(bos.out.substr(0, bos.out.find('\n')))["ids"][0], 0);  // BOS
}

TEST_F(TokenizeCli, BadInputIsOneErrorLine) {
  aha("tokenizer train --corpus " + dir_ + "/corpus.txt --vocab-size 300 --out " + dir_ + "/t2");
  std::string tok = " --tokenizer " + dir_ + "/t2";
  expect_error(aha("tokenize" + tok, "{\"text\": \"ok\"}\nnot json\n"), "line 2");
  expect_error(aha("tokenize" + tok, "{\"txt\": 1}\n"), "expected {\"text\"");
  expect_error(aha("tokenize --decode" + tok, "{\"ids\": [1, 99999]}\n"), "99999");
  expect_error(aha("tokenize --decode" + tok, "{\"ids\": [-1]}\n"), "-1");
  expect_error(aha("tokenize --tokenizer /nonexistent"), "no tokenizer.json");
  std::ofstream(dir_ + "/bad.json") << "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}";
  expect_error(aha("tokenize --tokenizer " + dir_ + "/bad.json"), "model type 'WordPiece'");
  std::ofstream(dir_ + "/corrupt.json") << "{\"model\": ";
  expect_error(aha("tokenize --tokenizer " + dir_ + "/corrupt.json"), "not valid JSON");
  expect_error(aha("tokenizer train --corpus " + dir_ + "/corpus.txt --vocab-size 10 --out " +
                   dir_ + "/t3"),
               "vocab_size 10");
  expect_error(aha("tokenize --bogus"), "bogus");
}

TEST_F(TokenizeCli, HelpAndBench) {
  for (const char* cmd : {"tokenize --help", "tokenizer train --help", "bench tokenize --help"}) {
    Result r = aha(cmd);
    EXPECT_EQ(r.rc, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find("usage: aha"), std::string::npos) << cmd;
  }
  aha("tokenizer train --corpus " + dir_ + "/corpus.txt --vocab-size 300 --out " + dir_ + "/t4");
  Result b = aha("bench tokenize --tokenizer " + dir_ + "/t4 --size-mb 0.05 --seconds 0.05");
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_GT(aha::Json::parse(b.out.substr(0, b.out.find('\n')))["mb_per_s"].get<double>(), 0.0);
}

}  // namespace
