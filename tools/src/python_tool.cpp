// The Python tool: each call runs in a fresh code sandbox (rewards/sandbox.h). State across an
// episode's turns comes from replay: the call re-runs the episode's earlier cells with their
// output suppressed and their errors ignored, then runs the new cell and shows its output
// (and the value of a last bare expression, as a notebook does). Replay keeps the sandbox's
// isolation (no process outlives a call) at the cost of re-running earlier cells' work.
#include <memory>

#include "aha/tools/tools.h"

namespace aha::tools {

namespace {

// Reads cells.json (a list of sources); all but the last run silently. Exit 0: the last cell
// ran; exit 3: it raised (the traceback, without the driver's frames, is on stdout).
constexpr const char* kDriver = R"PY(import ast, contextlib, io, json, sys, traceback
cells = json.load(open("cells.json"))
g = {"__name__": "__main__", "__builtins__": __builtins__}
for src in cells[:-1]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exec(compile(src, "<cell>", "exec"), g)
        except BaseException:
            pass
src = cells[-1]
sys.stderr = sys.stdout
try:
    tree = ast.parse(src, "<cell>")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<cell>", "exec"), g)
    if last is not None:
        v = eval(compile(last, "<cell>", "eval"), g)
        if v is not None:
            print(repr(v))
except SystemExit:
    pass
except BaseException as e:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == "<cell>"]
    print("Traceback (most recent call last):")
    print("".join(traceback.format_list(frames)), end="")
    print("".join(traceback.format_exception_only(type(e), e)), end="")
    sys.stdout.flush()
    sys.exit(3)
)PY";

class PythonSession : public rollout::ToolSession {
 public:
  explicit PythonSession(const PythonToolOptions& o) : o_(o) {}

  rollout::ToolResult call(const std::string& input) override {
    std::string code = input;
    Json j = Json::parse(input, nullptr, false);  // <tool_call> arguments: {"code": "..."}
    if (!j.is_discarded() && j.is_object() && j.contains("code") && j["code"].is_string()) {
      code = j["code"].get<std::string>();
    }
    cells_.push_back(code);
    const Json cells = cells_;
    rewards::SandboxResult r = rewards::run_sandboxed(
        {o_.python, "-I", "-B", "driver.py"}, {{"driver.py", kDriver}, {"cells.json", cells.dump()}},
        "", o_.limits);
    std::string out = r.out + r.err;
    if (!r.error.empty()) return {rollout::ToolStatus::kFatal, "sandbox: " + r.error};
    if (r.timed_out) return {rollout::ToolStatus::kFatal, "python: timeout after " + std::to_string(o_.limits.wall_s) + " s"};
    if (r.output_truncated) return {rollout::ToolStatus::kFatal, "python: output limit"};
    if (r.disk_full) return {rollout::ToolStatus::kFatal, "python: disk quota exceeded"};
    if (r.signal != 0) return {rollout::ToolStatus::kFatal, "python: " + r.status()};
    if (r.exit_code == 3) return {rollout::ToolStatus::kError, out};
    if (r.exit_code != 0) {
      return {rollout::ToolStatus::kFatal, "python: " + r.status() + ": " + out.substr(0, 200)};
    }
    return {rollout::ToolStatus::kOk, out};
  }

 private:
  const PythonToolOptions& o_;
  std::vector<std::string> cells_;
};

class PythonTool : public rollout::Tool {
 public:
  explicit PythonTool(PythonToolOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "python"; }
  std::unique_ptr<rollout::ToolSession> open(const std::string&) const override {
    return std::make_unique<PythonSession>(o_);
  }

 private:
  PythonToolOptions o_;
};

}  // namespace

std::unique_ptr<rollout::Tool> make_python_tool(const PythonToolOptions& o) {
  return std::make_unique<PythonTool>(o);
}

}  // namespace aha::tools
