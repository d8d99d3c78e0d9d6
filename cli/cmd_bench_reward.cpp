// `aha bench reward`: reward throughput as JSON lines: math checks/s per core (extraction +
// equivalence on typical GSM8K/MATH answers, 1 thread and all threads) and sandboxed code
// executions/s. Every scenario checks its verdicts once before timing.
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/rewards/code.h"
#include "aha/rewards/math.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {
namespace {

struct MathCase {
  const char* completion;
  const char* gold;
  bool equal;
};

// Typical answers: GSM8K completions ending in "#### n" and MATH completions with \boxed{}.
const MathCase kMathCases[] = {
    {"She has 5 + 7 = 12 apples, then gives 4 away. 12 - 4 = 8.\n#### 8", "8", true},
    {"Each box costs $3, so 6 boxes cost 6 * 3 = $18.\n#### 18", "18", true},
    {"The total is 1,250 dollars.\n#### 1,250", "1250", true},
    {"So he needs 45 minutes.\n#### 45", "40", false},
    {"The answer is 72.", "72", true},
    {"Thus the probability is \\boxed{\\frac{1}{2}}.", "\\frac12", true},
    {"So $x = \\boxed{2\\sqrt{3}}$.", "\\sqrt{12}", true},
    {"The vertex is at \\boxed{(1, -2)}.", "(1,-2)", true},
    {"Hence the sum is \\boxed{\\dfrac{7}{3}}.", "\\frac{7}{3}", true},
    {"We get \\boxed{x^2+2x+1}.", "(x+1)^2", true},
    {"The interval is \\boxed{[0, 3)}.", "[0,3)", true},
    {"Therefore \\boxed{12\\pi}.", "12\\pi", true},
    {"The answer is \\boxed{0.25}.", "\\frac{1}{4}", true},
    {"The answer is \\boxed{5}.", "6", false},
    {"So \\boxed{\\frac{3}{4}}.", "\\frac{2}{3}", false},
    {"<think>2+2=4</think><answer>4</answer>", "4", true},
};

// Answers that differ as text, so every check goes through the parser and evaluator.
const MathCase kParsedCases[] = {
    {"\\boxed{\\frac{1}{2}}", "0.5", true},
    {"\\boxed{2\\sqrt{3}}", "\\sqrt{12}", true},
    {"\\boxed{1,000}", "1000", true},
    {"\\boxed{(1, -2)}", "\\left(1,-2\\right)", true},
    {"\\boxed{x^2+2x+1}", "(x+1)^2", true},
    {"\\boxed{\\{3, 1, 2\\}}", "\\{1,2,3\\}", true},
    {"\\boxed{[0, \\frac{1}{2})}", "[0, 0.5)", true},
    {"\\boxed{50\\%}", "0.5", true},
    {"\\boxed{x = 3}", "3", true},
    {"\\boxed{\\dfrac{\\pi}{3}}", "\\frac{\\pi}{3}", true},
    {"\\boxed{3\\frac{1}{2}}", "\\frac72", true},
    {"\\boxed{\\frac{2}{3}}", "0.67", false},  // 0.667 rounds 2/3 at the decimals it shows: equal
};

// Runs fn(i) over a repeating index for about `seconds` on `threads` threads; returns calls/s.
template <typename Fn>
double rate(int threads, double seconds, Fn fn) {
  std::atomic<int64_t> calls{0};
  auto start = std::chrono::steady_clock::now();
  auto stop = start + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_for(0, threads, [&](int t) {
      int64_t n = 0;
      for (size_t i = static_cast<size_t>(t); std::chrono::steady_clock::now() < stop; i += 64) {
        for (int k = 0; k < 64; ++k) fn(i + static_cast<size_t>(k));
        n += 64;
      }
      calls += n;
    }, tbb::static_partitioner());
  });
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(calls.load()) / elapsed;
}

void bench_math_cases(const char* name, const MathCase* cases, size_t n_cases, int threads,
                      double seconds) {
  for (size_t i = 0; i < n_cases; ++i) {  // check once before timing
    const auto& c = cases[i];
    auto e = rewards::extract_answer(c.completion);
    bool eq = rewards::math_equal(e.text, rewards::extract_gold(c.gold)) ==
              rewards::MathVerdict::kEqual;
    AHA_CHECK(eq == c.equal, "bench case gives the wrong verdict: ", c.completion);
  }
  std::atomic<int64_t> sink{0};
  auto check = [&](size_t i) {
    const auto& c = cases[i % n_cases];
    auto e = rewards::extract_answer(c.completion);
    sink += rewards::math_equal(e.text, c.gold) == rewards::MathVerdict::kEqual;
  };
  for (int t : {1, threads}) {
    double r = rate(t, seconds, check);
    Json line = {{"bench", name}, {"threads", t}, {"checks_per_s", r},
                 {"checks_per_s_per_core", r / t}, {"us_per_check", 1e6 * t / r},
                 {"cases", n_cases}};
    std::cout << line.dump() << std::endl;
    if (t == threads) break;
  }
}

void bench_math(int threads, double seconds) {
  bench_math_cases("reward_math", kMathCases, std::size(kMathCases), threads, seconds);
  bench_math_cases("reward_math_parsed", kParsedCases, std::size(kParsedCases), threads, seconds);
}

void bench_code(int parallel, int runs) {
  rewards::CodeOptions o;
  o.max_parallel = parallel;
  o.limits.wall_s = 5;
  Json tests = {{"inputs", Json::array()}, {"outputs", Json::array()}};
  for (int i = 0; i < runs; ++i) {
    tests["inputs"].push_back(std::to_string(i) + " " + std::to_string(2 * i) + "\n");
    tests["outputs"].push_back(std::to_string(3 * i) + "\n");
  }
  const std::string program = "a, b = map(int, input().split())\nprint(a + b)\n";
  auto t0 = std::chrono::steady_clock::now();
  auto r = rewards::run_io_tests(program, tests, o);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  AHA_CHECK(r.n_passed == runs, "code bench: ", r.n_passed, "/", runs, " passed (",
            r.tests.empty() ? "" : r.tests[0].status, ")");
  Json line = {{"bench", "reward_code"}, {"parallel", parallel}, {"executions", runs},
               {"executions_per_s", runs / s}, {"ms_per_execution_wall", 1e3 * s / runs},
               {"net_ns", r.isolation.net_ns}, {"mount_ns", r.isolation.mount_ns},
               {"pid_ns", r.isolation.pid_ns}, {"unprivileged", r.isolation.unprivileged}};
  std::cout << line.dump() << std::endl;
}

}  // namespace

int bench_reward(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  desc.add_options()
      ("seconds", po::value<double>()->default_value(1.0, "1"), "timing per math scenario")
      ("threads", po::value<int>()->default_value(0), "threads (0: all cores)")
      ("code-runs", po::value<int>()->default_value(64), "sandboxed executions (0: skip)")
      ("code-parallel", po::value<int>()->default_value(0), "concurrent executions (0: cores)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha bench reward [options]")) return 0;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int threads = vm["threads"].as<int>() > 0 ? vm["threads"].as<int>() : cores;
  double seconds = vm["seconds"].as<double>();
  if (!(seconds > 0)) fail("--seconds must be > 0");
  bench_math(threads, seconds);
  int runs = vm["code-runs"].as<int>();
  int parallel = vm["code-parallel"].as<int>() > 0 ? vm["code-parallel"].as<int>() : cores;
  if (runs > 0) bench_code(parallel, runs);
  return 0;
}

}  // namespace aha::cli
