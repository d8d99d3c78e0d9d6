// `aha reward` end to end: JSONL in, one JSONL line out per input line in order, bad lines
// scored 0 with a reason, bad options as one `error:` line. Skipped when the CLI is not built.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aha/core/config.h"

namespace aha {
namespace {

const std::string kAha = std::string(AHA_BINARY_DIR) + "/cli/aha";

struct CliRun {
  int code = -1;
  std::string out;
};

CliRun run(const std::string& args) {
  CliRun r;
  std::string cmd = kAha + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::vector<Json> lines(const std::string& out) {
  std::vector<Json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) v.push_back(Json::parse(line, nullptr, false));
  return v;
}

class CliReward : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kAha)) GTEST_SKIP() << "aha binary not built";
    dir_ = std::filesystem::temp_directory_path() / ("aha_cli_reward_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(CliReward, MathLinesInOrderWithReasons) {
  std::string in = write("math.jsonl",
                         R"J({"completion": "so \\boxed{\\frac{1}{2}}", "answer": "0.5"})J" "\n"
                         R"J({"completion": "#### 7", "answer": "x\n#### 8"})J" "\n"
                         "not json\n"
                         R"J({"answer": "3"})J" "\n"
                         R"J({"completion": "The answer is 1,000.", "answer": "1000"})J" "\n");
  CliRun r = run("reward --reward math --skip-bad-lines --input " + in);
  ASSERT_EQ(r.code, 0) << r.out;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 5u) << r.out;
  EXPECT_EQ(out[0]["reward"], 1.0);
  EXPECT_EQ(out[0]["rewards"]["math"], 1.0);
  EXPECT_EQ(out[0]["details"]["math"]["verdict"], "equal");
  EXPECT_EQ(out[1]["reward"], 0.0);
  EXPECT_EQ(out[2]["reward"], 0.0);
  EXPECT_TRUE(out[2]["details"].contains("error"));
  EXPECT_TRUE(out[3]["details"].contains("error"));
  EXPECT_EQ(out[4]["reward"], 1.0);
}

// Without --skip-bad-lines a line that is not a sample is an error naming the line, and a
// --out file is not left half-written.
TEST_F(CliReward, BadLinesAreErrorsUnlessSkipped) {
  const std::string out = (dir_ / "out.jsonl").string();
  struct Case {
    std::string line, needle;
  } cases[] = {
      {"not json", "line 2: not valid JSON"},
      {R"J({"answer": "3"})J", "line 2: no string \"completion\""},
      {R"J({"completion": "\\boxed{3}", "answr": "3"})J", "line 2: math: no 'answer' field"},
      {std::string(100000, '[') + std::string(100000, ']'), "line 2: JSON nested deeper"},
  };
  for (const Case& c : cases) {
    std::string in = write("bad.jsonl", R"J({"completion": "\\boxed{1}", "answer": "1"})J" "\n" +
                                            c.line + "\n");
    CliRun r = run("reward --reward math --input " + in + " --out " + out);
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out.substr(0, 300);
    EXPECT_NE(r.out.find(c.needle), std::string::npos) << r.out.substr(0, 300);
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out.substr(0, 300);
    EXPECT_FALSE(std::filesystem::exists(out));
    r = run("reward --reward math --skip-bad-lines --input " + in + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.out.substr(0, 300);
    std::ifstream f(out);
    std::string l1, l2;
    std::getline(f, l1);
    std::getline(f, l2);
    EXPECT_EQ(Json::parse(l1)["reward"], 1.0);
    EXPECT_EQ(Json::parse(l2)["reward"], 0.0);
    std::filesystem::remove(out);
  }
}

TEST_F(CliReward, CodeLines) {
  std::string in = write(
      "code.jsonl",
      R"J({"completion": "```python\nprint(int(input()) * 2)\n```", "tests": {"inputs": ["2\n", "5\n"], "outputs": ["4\n", "10\n"]}})J" "\n"
      R"J({"completion": "```python\ndef f(a):\n    return a + 1\n```", "tests": {"fn_name": "f", "inputs": [[1], [2]], "outputs": [[2], [4]]}})J" "\n"
      R"J({"prompt": "def g(x):\n", "completion": "    return -x\n", "test": "def check(c):\n    assert c(2) == -2\n", "entry_point": "g"})J" "\n"
      R"J({"completion": "print(1)", "tests": "not an object"})J" "\n");
  CliRun r = run("reward --reward code --params '{\"code\": {\"timeout_s\": 10}}' --input " + in);
  ASSERT_EQ(r.code, 0) << r.out;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_EQ(out[0]["reward"], 1.0) << out[0].dump();
  EXPECT_EQ(out[1]["reward"], 0.5) << out[1].dump();
  EXPECT_EQ(out[2]["reward"], 1.0) << out[2].dump();
  EXPECT_EQ(out[3]["reward"], 0.0);
  EXPECT_TRUE(out[3]["details"]["code"].contains("reason"));
}

TEST_F(CliReward, WeightedConfig) {
  std::string cfg = write("rewards.json",
                          R"J([{"name": "math", "weight": 2.0}, {"name": "format", "weight": 0.5}])J");
  std::string in = write("f.jsonl",
                         R"J({"completion": "<think>2+2</think><answer>4</answer>", "answer": "4"})J" "\n");
  CliRun r = run("reward --config " + cfg + " --input " + in);
  ASSERT_EQ(r.code, 0) << r.out;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["reward"], 2.5);
}

TEST_F(CliReward, BadOptionsAreOneErrorLine) {
  std::string in = write("x.jsonl", "{}\n");
  CliRun r = run("reward --reward nope --input " + in);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
  r = run("reward --reward math --params '{\"math\": {\"bogus\": 1}}' --input " + in);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("bogus"), std::string::npos) << r.out;
  r = run("reward --reward math --input /nonexistent.jsonl");
  EXPECT_NE(r.code, 0);
  r = run("reward --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: aha reward"), std::string::npos);
}

}  // namespace
}  // namespace aha
