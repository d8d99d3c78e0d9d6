// The built-in tools: the calculator against a table (exact, bounded, adversarial input), the
// Python tool's state across turns and its hostile cells, command tools that hang, lie or die,
// and the rollout.tools config.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "aha/core/error.h"
#include "aha/tools/tools.h"

namespace aha::tools {
namespace {

using rollout::ToolStatus;

TEST(Calculator, Table) {
  struct Case {
    const char* expr;
    const char* value;  // "" : an error
  };
  const Case cases[] = {
      {"1+2", "3"},
      {"2*3+4", "10"},
      {"2*(3+4)", "14"},
      {"-7//2", "-4"},
      {"-7%2", "1"},
      {"7%-2", "-1"},
      {"12/4", "3"},
      {"7/2", ""},
      {"1/0", ""},
      {"2**10", "1024"},
      {"2^10", "1024"},
      {"-2**2", "-4"},
      {"2**-1", ""},
      {"123456789123456789 * 987654321987654321", "121932631356500531347203169112635269"},
      {"99999999999999999999 + 1", "100000000000000000000"},
      {"100000000000000000000 - 1", "99999999999999999999"},
      {"1 - 100000000000000000000", "-99999999999999999999"},
      {"121932631356500531347203169112635269 / 987654321987654321", "123456789123456789"},
      {"1,000,000 + 1", "1000001"},
      {"  ( ( 5 ) ) ", "5"},
      {"0 * -5", "0"},
      {"2**100000", ""},      // more than 1000 digits
      {"10**999", nullptr},   // exactly 1000 digits: allowed
      {"3.5 + 1", ""},
      {"", ""},
      {"1 +", ""},
      {"(1", ""},
      {"import os", ""},
      {"1 2", ""},
  };
  for (const Case& c : cases) {
    CalcResult r = calculate(c.expr);
    if (c.value == nullptr) {
      EXPECT_TRUE(r.error.empty()) << c.expr << ": " << r.error;
    } else if (*c.value == '\0') {
      EXPECT_FALSE(r.error.empty()) << c.expr << " gave " << r.value;
    } else {
      EXPECT_EQ(r.value, c.value) << c.expr << ": " << r.error;
    }
  }
  EXPECT_EQ(calculate("10**999").value.size(), 1000u);
  // Deep nesting and long input are refused quickly, not by a stack overflow.
  EXPECT_FALSE(calculate(std::string(900, '(') + "1" + std::string(900, ')')).error.empty());
  EXPECT_FALSE(calculate(std::string(2000, '1')).error.empty());
  const auto t0 = std::chrono::steady_clock::now();
  calculate("(10**499+7)*(10**499+9)//(10**300+3)");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
}

TEST(Calculator, Tool) {
  auto calc = make_calculator();
  auto s = calc->open("");
  EXPECT_EQ(s->call("6*7").output, "42");
  EXPECT_EQ(s->call("{\"expression\": \"6*7\"}").output, "42");  // <tool_call> arguments
  auto bad = s->call("6/0");
  EXPECT_EQ(bad.status, ToolStatus::kError);
  EXPECT_EQ(bad.output, "error: division by zero");
}

bool sandbox_ok() { return rewards::sandbox_unavailable_reason().empty(); }

TEST(PythonTool, KeepsStateAcrossTurnsAndShowsErrors) {
  if (!sandbox_ok()) GTEST_SKIP() << rewards::sandbox_unavailable_reason();
  PythonToolOptions o;
  o.limits.wall_s = 10;
  auto py = make_python_tool(o);
  auto s = py->open("");
  auto r = s->call("x = 21\nprint('set')");
  EXPECT_EQ(r.status, ToolStatus::kOk);
  EXPECT_EQ(r.output, "set\n");
  r = s->call("y = x * 2\ny");  // earlier cells' output is not repeated; a bare last value shows
  EXPECT_EQ(r.status, ToolStatus::kOk);
  EXPECT_EQ(r.output, "42\n");
  r = s->call("{\"code\": \"print(x + y)\"}");
  EXPECT_EQ(r.output, "63\n");
  r = s->call("1/0");
  EXPECT_EQ(r.status, ToolStatus::kError);
  EXPECT_NE(r.output.find("ZeroDivisionError"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("driver.py"), std::string::npos) << r.output;
  r = s->call("print(y)");  // the failed cell did not lose the state
  EXPECT_EQ(r.output, "42\n");
  // Another episode starts empty.
  auto other = py->open("");
  EXPECT_EQ(other->call("print('x' in dir())").output, "False\n");
}

TEST(PythonTool, HostileCellsEndTheEpisode) {
  if (!sandbox_ok()) GTEST_SKIP() << rewards::sandbox_unavailable_reason();
  PythonToolOptions o;
  o.limits.wall_s = 2;
  o.limits.output_bytes = 4096;
  o.limits.n_procs = 32;
  auto py = make_python_tool(o);
  const char* hostile[] = {
      "while True: pass",                                              // hang
      "print('x' * 10**6)",                                            // huge output
      "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",  // fork bomb
  };
  for (const char* code : hostile) {
    auto s = py->open("");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = s->call(code);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, ToolStatus::kFatal) << code << ": " << r.output;
    EXPECT_LT(secs, 8.0) << code;
  }
}

// A command tool from a shell script.
std::unique_ptr<rollout::Tool> script_tool(const std::string& body, double timeout_s = 1.0,
                                          bool environment = false) {
  static int n = 0;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("aha_tool_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ".sh"))
                               .string();
  std::ofstream(path) << "#!/bin/bash\n" << body;
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  CommandToolOptions o;
  o.name = "t";
  o.argv = {path};
  o.timeout_s = timeout_s;
  o.environment = environment;
  return make_command_tool(o);
}

TEST(CommandTool, SpeaksJsonLinesAndSurvivesBadPrograms) {
  // Keeps state (a counter) across the calls of one episode.
  auto good = script_tool(
      "n=0\nwhile read -r line; do n=$((n+1)); echo \"{\\\"output\\\": \\\"call $n\\\"}\"; done\n");
  auto s = good->open("prompt");
  EXPECT_EQ(s->call("a").output, "call 1");
  auto r = s->call("b");
  EXPECT_EQ(r.status, ToolStatus::kOk);
  EXPECT_EQ(r.output, "call 2");
  auto err = script_tool("read -r line; echo '{\"output\": \"nope\", \"status\": \"error\"}'\n");
  EXPECT_EQ(err->open("")->call("x").status, ToolStatus::kError);

  const char* bad[] = {
      "sleep 100\n",                          // hangs
      "read -r line; echo not json\n",        // garbage
      "exit 3\n",                             // dies
      "read -r line; echo '{\"output\": 5}'\n",  // wrong shape
      "read -r line; echo '{\"output\": \"x\", \"status\": \"maybe\"}'\n",
      "read -r line; head -c 3000000 /dev/zero | tr '\\0' x\n",  // a line past the limit
  };
  for (const char* body : bad) {
    auto tool = script_tool(body);
    const auto t0 = std::chrono::steady_clock::now();
    {
      auto session = tool->open("");
      auto res = session->call("x");
      EXPECT_EQ(res.status, ToolStatus::kFatal) << body << ": " << res.output;
    }  // the session's process group is killed here
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, 3.0) << body;
  }
}

TEST(CommandTool, EnvironmentResetsStepsWithRewardsAndEnds) {
  // reset: the prompt echoed back; each step: reward = its number, done at the third.
  auto env = script_tool(
      "read -r line; echo '{\"observation\": \"start\"}'\n"
      "n=0\nwhile read -r line; do n=$((n+1)); d=false; [ $n = 3 ] && d=true;\n"
      "  echo \"{\\\"observation\\\": \\\"o$n\\\", \\\"reward\\\": $n, \\\"done\\\": $d}\"; done\n",
      1.0, true);
  EXPECT_TRUE(env->environment());
  auto s = env->open("p");
  const auto first = s->reset();
  EXPECT_EQ(first.status, ToolStatus::kOk);
  EXPECT_EQ(first.output, "start");
  for (int n = 1; n <= 3; ++n) {
    const auto r = s->call("act");
    EXPECT_EQ(r.output, "o" + std::to_string(n));
    EXPECT_DOUBLE_EQ(r.reward, n);
    EXPECT_EQ(r.done, n == 3);
  }
  // Rewards and done are an environment's words: from a plain tool, or malformed, fatal.
  const char* reply_reward = "read -r line; echo '{\"output\": \"x\", \"reward\": 1}'\n";
  EXPECT_EQ(script_tool(reply_reward)->open("")->call("x").status, ToolStatus::kFatal);
  for (const char* bad : {"read -r line; echo '{\"output\": \"x\", \"reward\": \"1\"}'\n",
                          "read -r line; echo '{\"output\": \"x\", \"done\": 1}'\n",
                          "read -r line; echo '{\"observation\": 3}'\n"}) {
    EXPECT_EQ(script_tool(bad, 1.0, true)->open("")->call("x").status, ToolStatus::kFatal) << bad;
  }
}

const std::string kGuessEnv =
    std::string(AHA_BINARY_DIR) + "/examples/tool_plugin/libaha_guess_env.so";

TEST(PluginTool, EnvironmentThroughTheCAbi) {
  ToolSet set = ToolSet::from_json(
      Json::array({Json{{"name", "game"}, {"plugin", kGuessEnv}, {"timeout_s", 0.5},
                        {"params", {{"step_reward", -0.25}}}}}),
      "rollout.tools");
  const rollout::Tool* game = set.tools().at(0);
  EXPECT_EQ(game->name(), "game");
  EXPECT_TRUE(game->environment());
  auto s = game->open("play 3");
  EXPECT_EQ(s->reset().output, "I chose a digit 0-9. Guess it.\n");
  auto r = s->call("5");
  EXPECT_EQ(r.status, ToolStatus::kOk);
  EXPECT_EQ(r.output, "lower");
  EXPECT_DOUBLE_EQ(r.reward, -0.25);
  EXPECT_FALSE(r.done);
  r = s->call("five");
  EXPECT_EQ(r.status, ToolStatus::kError);
  EXPECT_TRUE(std::isnan(r.reward));
  r = s->call("3");
  EXPECT_EQ(r.output, "right after 2 guesses");  // the session kept its count
  EXPECT_DOUBLE_EQ(r.reward, 1.0);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(game->open("play 1")->call("boom").status, ToolStatus::kFatal);
  // A call past its limit ends the episode within the limit; the next call is refused.
  auto hung = game->open("play 1");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(hung->call("hang").status, ToolStatus::kFatal);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
  EXPECT_EQ(hung->call("1").status, ToolStatus::kFatal);
  EXPECT_THROW(game->open("no digit"), Error);
}

TEST(ToolSet, ConfigErrorsNameTheKey) {
  auto expect_error = [](const Json& j, const std::string& needle) {
    try {
      ToolSet::from_json(j, "rollout.tools");
      ADD_FAILURE() << "no error for " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  EXPECT_EQ(ToolSet::from_json(Json::array({"calculator"}), "rollout.tools").tools().size(), 1u);
  expect_error("calculator", "rollout.tools must be a list");
  expect_error(Json::array({"abacus"}), "rollout.tools[0]: unknown tool \"abacus\"");
  expect_error(Json::array({"calculator", "calculator"}), "named twice");
  expect_error(Json::array({Json{{"name", "calculator"}, {"speed", 3}}}), "speed");
  expect_error(Json::array({Json{{"name", "x"}, {"command", 5}}}), "rollout.tools[0].command");
  const Json env = {{"command", "true"}, {"environment", true}};
  Json two = Json::array({env, env});
  two[0]["name"] = "a";
  two[1]["name"] = "b";
  expect_error(two, "rollout.tools[1]: a second environment");
  expect_error(Json::array({Json{{"name", "g"}, {"plugin", "/nonexistent.so"}}}),
               "rollout.tools[0]: [tool plugin] cannot load '/nonexistent.so'");
  expect_error(Json::array({Json{{"name", "g"}, {"plugin", kGuessEnv},
                                 {"params", {{"step_reward", "x"}}}}}),
               "create failed: step_reward must be a number");
}

}  // namespace
}  // namespace aha::tools
