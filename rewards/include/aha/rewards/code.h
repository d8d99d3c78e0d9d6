// Code rewards: extracting a program from a completion and running it against tests in the
// sandbox: stdin/stdout tests (APPS / CodeContests), function-call tests (fn_name) and
// HumanEval-style test programs. Python 3. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "aha/core/config.h"
#include "aha/rewards/sandbox.h"

namespace aha::rewards {

struct CodeOptions {
  SandboxLimits limits;           // per test execution
  int max_parallel = 4;           // concurrent executions of one problem's tests
  bool all_or_nothing = false;    // reward 1 only when every test passes (else pass fraction)
  int max_tests = 0;              // run at most this many tests (0: all)
  std::string python = "python3";
  double float_tol = 1e-6;        // tokens that parse as numbers compare with this tolerance
};

struct CodeTestResult {
  bool passed = false;
  std::string status;  // sandbox status ("ok", "timeout", "exit 1", ...) or "wrong answer"
  double wall_s = 0;
  bool disk_full = false;  // the program filled its work dir (SandboxLimits::disk_mb)
};

struct CodeResult {
  double score = 0;
  int n_passed = 0;
  int n_tests = 0;
  std::vector<CodeTestResult> tests;
  std::string reason;  // set when nothing could be run (no code, malformed tests)
  SandboxIsolation isolation;
};

// The last fenced code block (```python, ```py, ```), else the text after </think>, trimmed.
std::string extract_code(std::string_view completion);

// stdin/stdout tests {"inputs": [..], "outputs": [..]}, or function-call tests when the
// object has "fn_name" (inputs[i] is the argument list, outputs[i] the return value).
CodeResult run_io_tests(const std::string& program, const Json& tests, const CodeOptions& o);

// A whole test program (HumanEval: prompt + completion + test + check(entry_point)); passes
// when it exits 0.
CodeResult run_test_program(const std::string& program, const CodeOptions& o);

// The HumanEval program: prompt + completion + test + "check(entry_point)". When the code
// already defines entry_point it replaces the prompt.
std::string humaneval_program(std::string_view prompt, std::string_view code,
                              std::string_view test, std::string_view entry_point);

// Whether two program outputs match: trailing whitespace per line ignored, then token by
// token with numbers compared to float_tol.
bool outputs_match(std::string_view got, std::string_view expected, double float_tol);

}  // namespace aha::rewards
