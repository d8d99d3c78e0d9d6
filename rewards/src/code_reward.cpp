// Code rewards: program extraction, I/O and function-call test harnesses, HumanEval programs,
// parallel test execution with a concurrency limit, and the "code" RewardFunction.
#include "aha/rewards/code.h"

#include <unistd.h>

#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "builtin.h"

namespace aha::rewards {
namespace {

constexpr const char* kResultMarker = "\n__AHA_RESULT__";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool parse_double(std::string_view t, double& v) {
  std::string s(t);
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && !s.empty() && std::isfinite(v);
}

bool close(double a, double b, double tol) {
  return std::fabs(a - b) <= tol * std::max(1.0, std::max(std::fabs(a), std::fabs(b)));
}

// JSON equality with numeric tolerance; tuples arrive as lists.
bool json_close(const Json& a, const Json& b, double tol) {
  if (a.is_number() && b.is_number()) return close(a.get<double>(), b.get<double>(), tol);
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!json_close(a[i], b[i], tol)) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key()) || !json_close(it.value(), b[it.key()], tol)) return false;
    }
    return true;
  }
  return a == b;
}

std::string as_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {  // some datasets store lines as a list
    std::string out;
    for (const auto& line : v) out += as_text(line) + "\n";
    return out;
  }
  return v.dump();
}

std::string function_harness(const std::string& program, const std::string& fn_name) {
  return program +
         "\n\n"
         "def _aha_main():\n"
         "    import sys as _s, json as _j\n"
         "    _args = _j.loads(_s.stdin.read())\n"
         "    _f = globals().get(" + Json(fn_name).dump() + ")\n"
         "    if _f is None and 'Solution' in globals():\n"
         "        _f = getattr(globals()['Solution'](), " + Json(fn_name).dump() + ")\n"
         "    _r = _f(*_args)\n"
         "    if isinstance(_r, tuple): _r = list(_r)\n"
         "    _s.stdout.write('" + std::string("\\n__AHA_RESULT__") + "' + _j.dumps(_r))\n"
         "    _s.stdout.flush()\n"
         "_aha_main()\n";
}

bool function_result_matches(const std::string& out, const Json& expected, double tol) {
  size_t at = out.rfind(kResultMarker);
  if (at == std::string::npos) return false;
  Json got = Json::parse(out.substr(at + std::string(kResultMarker).size()), nullptr, false);
  if (got.is_discarded()) return false;
  if (json_close(got, expected, tol)) return true;
  // APPS wraps the return value in a one-element list
  return expected.is_array() && expected.size() == 1 && json_close(got, expected[0], tol);
}

// Runs n tests with at most o.max_parallel at a time; each test is run(i) -> result.
template <typename Run>
CodeResult run_parallel(size_t n, const CodeOptions& o, Run run) {
  CodeResult res;
  res.tests.resize(n);
  std::vector<SandboxIsolation> iso(n);
  tbb::task_arena arena(std::clamp(o.max_parallel, 1, tbb::info::default_concurrency()));
  arena.execute([&] {
    tbb::parallel_for(size_t{0}, n, [&](size_t i) { res.tests[i] = run(i, iso[i]); });
  });
  res.n_tests = static_cast<int>(n);
  for (const auto& t : res.tests) res.n_passed += t.passed;
  if (n > 0) res.isolation = iso[0];
  if (o.all_or_nothing) {
    res.score = res.n_passed == res.n_tests && n > 0 ? 1.0 : 0.0;
  } else {
    res.score = n > 0 ? static_cast<double>(res.n_passed) / static_cast<double>(n) : 0.0;
  }
  return res;
}

}  // namespace

std::string extract_code(std::string_view c) {
  size_t think = c.rfind("</think>");
  if (think != std::string_view::npos) c = c.substr(think + 8);
  size_t close_fence = c.rfind("```");
  if (close_fence != std::string_view::npos && close_fence > 0) {
    size_t open = c.rfind("```", close_fence - 1);
    if (open != std::string_view::npos) {
      size_t body = c.find('\n', open);
      if (body != std::string_view::npos && body < close_fence) {
        return std::string(c.substr(body + 1, close_fence - body - 1));
      }
    }
  }
  // no fence: keep the indentation of the first line (HumanEval completions continue a body)
  while (!c.empty()) {
    size_t nl = c.find('\n');
    if (nl == std::string_view::npos || !trim(c.substr(0, nl)).empty()) break;
    c.remove_prefix(nl + 1);
  }
  while (!c.empty() && std::isspace(static_cast<unsigned char>(c.back()))) c.remove_suffix(1);
  if (trim(c).empty()) return "";
  return std::string(c);
}

bool outputs_match(std::string_view got, std::string_view expected, double tol) {
  auto a = tokens(got);
  auto b = tokens(expected);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    double x, y;
    if (!parse_double(a[i], x) || !parse_double(b[i], y) || !close(x, y, tol)) return false;
  }
  return true;
}

std::string humaneval_program(std::string_view prompt, std::string_view code,
                              std::string_view test, std::string_view entry_point) {
  std::string def = "def " + std::string(entry_point) + "(";
  std::string program = code.find(def) != std::string_view::npos
                            ? std::string(code)
                            : std::string(prompt) + std::string(code);
  program += "\n\n";
  program += test;
  program += "\n\ncheck(" + std::string(entry_point) + ")\n";
  return program;
}

CodeResult run_io_tests(const std::string& program, const Json& tests, const CodeOptions& o) {
  CodeResult bad;
  if (!tests.is_object() || !tests.contains("inputs") || !tests.contains("outputs") ||
      !tests["inputs"].is_array() || !tests["outputs"].is_array() ||
      tests["inputs"].size() != tests["outputs"].size()) {
    bad.reason = "tests must be {\"inputs\": [..], \"outputs\": [..]} of equal length";
    return bad;
  }
  size_t n = tests["inputs"].size();
  if (o.max_tests > 0) n = std::min(n, static_cast<size_t>(o.max_tests));
  bool call = tests.contains("fn_name") && tests["fn_name"].is_string();
  std::string source = call ? function_harness(program, tests["fn_name"].get<std::string>())
                            : program;
  std::vector<std::string> argv{o.python, "-I", "-B", "main.py"};
  return run_parallel(n, o, [&](size_t i, SandboxIsolation& iso) {
    const Json& in = tests["inputs"][i];
    const Json& want = tests["outputs"][i];
    std::string stdin_text = call ? (in.is_array() ? in : Json::array({in})).dump() : as_text(in);
    SandboxResult r = run_sandboxed(argv, {{"main.py", source}}, stdin_text, o.limits);
    iso = r.isolation;
    CodeTestResult t;
    t.wall_s = r.wall_s;
    t.status = r.status();
    t.disk_full = r.disk_full;
    if (r.ok()) {
      t.passed = call ? function_result_matches(r.out, want, o.float_tol)
                      : outputs_match(r.out, as_text(want), o.float_tol);
      if (!t.passed) t.status = "wrong answer";
    }
    return t;
  });
}

CodeResult run_test_program(const std::string& program, const CodeOptions& o) {
  std::vector<std::string> argv{o.python, "-I", "-B", "main.py"};
  return run_parallel(1, o, [&](size_t, SandboxIsolation& iso) {
    SandboxResult r = run_sandboxed(argv, {{"main.py", program}}, "", o.limits);
    iso = r.isolation;
    return CodeTestResult{r.ok(), r.status(), r.wall_s, r.disk_full};
  });
}

}  // namespace aha::rewards

namespace aha::rewards::detail {
namespace {

// "code": rows with "tests" ({"inputs", "outputs"[, "fn_name"]}, or that object as a JSON
// string as APPS stores it) or HumanEval rows with "test" and "entry_point".
// What to change when the sandbox cannot be built: root lacks CAP_SYS_ADMIN or its seccomp/
// AppArmor profile refuses unshare and mount (a container); an ordinary user lacks user
// namespaces (a sysctl, or Ubuntu's AppArmor restriction).
std::string sandbox_fix() {
  if (geteuid() == 0) {
    return "aha runs as root but may not create namespaces or mount, as in a container: give it "
           "CAP_SYS_ADMIN and unconfined seccomp and AppArmor profiles (docker run --cap-add "
           "SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined), or "
           "run aha as an ordinary user on a host with user namespaces";
  }
  return "aha runs as an ordinary user and needs unprivileged user namespaces: enable them "
         "(sysctl user.max_user_namespaces=15000; kernel.unprivileged_userns_clone=1 on Debian; "
         "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 23.10+) or run aha as root";
}

class CodeReward : public RewardFunction {
 public:
  explicit CodeReward(const Json& params) {
    StrictReader r(params, "code");
    o_.limits.wall_s = r.get<double>("timeout_s", o_.limits.wall_s);
    o_.limits.memory_mb = r.get<int64_t>("memory_mb", o_.limits.memory_mb);
    o_.limits.output_bytes = r.get<int64_t>("output_bytes", o_.limits.output_bytes);
    o_.limits.disk_mb = r.get<int64_t>("disk_mb", o_.limits.disk_mb);
    o_.limits.ro_paths = r.get<std::vector<std::string>>("ro_paths", {});
    o_.limits.allow_network = r.get<bool>("allow_network", false);
    o_.max_parallel = r.get<int>("max_parallel", o_.max_parallel);
    o_.all_or_nothing = r.get<bool>("all_or_nothing", false);
    o_.max_tests = r.get<int>("max_tests", 0);
    o_.python = r.get<std::string>("python", o_.python);
    r.finish();
    if (!(o_.limits.wall_s > 0) || o_.limits.memory_mb < 16 || o_.max_parallel < 1 ||
        o_.limits.disk_mb < 1) {
      fail("[code] need timeout_s > 0, memory_mb >= 16, max_parallel >= 1, disk_mb >= 1");
    }
    // Grading untrusted code without isolation would leak the tests: end the run instead.
    if (std::string why = sandbox_unavailable_reason(); !why.empty()) {
      fail("[code] the code reward needs its sandbox, which cannot run here (", why, "): ",
           sandbox_fix());
    }
  }

  RewardResult score(const Sample& s) const override {
    if (s.row == nullptr) return bad_row("no dataset row");
    const Json& row = *s.row;
    std::string code = extract_code(s.completion);
    if (code.empty()) return unjudged("no code in completion");
    CodeResult res;
    if (row.contains("tests")) {
      Json tests = row["tests"];
      if (tests.is_string()) tests = Json::parse(tests.get<std::string>(), nullptr, false);
      res = run_io_tests(code, tests, o_);
    } else if (row.contains("test") && row.contains("entry_point") && row["test"].is_string() &&
               row["entry_point"].is_string()) {
      std::string prompt = row.contains("prompt") && row["prompt"].is_string()
                               ? row["prompt"].get<std::string>()
                               : std::string(s.prompt);
      res = run_test_program(humaneval_program(prompt, code, row["test"].get<std::string>(),
                                               row["entry_point"].get<std::string>()),
                             o_);
    } else {
      return bad_row("row has neither \"tests\" nor \"test\" + \"entry_point\"");
    }
    if (!res.reason.empty()) return unjudged(res.reason);
    RewardResult r{res.score, Json::object()};
    r.details["passed"] = res.n_passed;
    r.details["tests"] = res.n_tests;
    Json statuses = Json::array();
    for (const auto& t : res.tests) statuses.push_back(t.status);
    r.details["status"] = std::move(statuses);
    r.details["network_isolated"] = res.isolation.network_isolated();
    bool disk_full = std::any_of(res.tests.begin(), res.tests.end(),
                                 [](const CodeTestResult& t) { return t.disk_full; });
    if (disk_full) r.details["disk_quota_exceeded"] = true;
    return r;
  }

 private:
  CodeOptions o_;
};

}  // namespace

std::unique_ptr<RewardFunction> make_code_reward(const Json& p) {
  return std::make_unique<CodeReward>(p);
}

}  // namespace aha::rewards::detail
