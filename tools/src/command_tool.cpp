// User tools: a program speaking JSON lines, one process per episode (so it may keep state),
// in a process group of its own that is killed when the episode's session ends. Every read has
// a deadline; a silent, dead or garbled program ends the episode, never the run.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstring>
#include <sstream>

#include "aha/core/error.h"
#include "aha/tools/tools.h"

namespace aha::tools {

namespace {

using rollout::ToolResult;
using rollout::ToolStatus;

class CommandSession : public rollout::ToolSession {
 public:
  CommandSession(const CommandToolOptions& o, std::string prompt) : o_(o), prompt_(std::move(prompt)) {
    start();
  }
  ~CommandSession() override { stop(); }
  CommandSession(const CommandSession&) = delete;
  CommandSession& operator=(const CommandSession&) = delete;

  ToolResult call(const std::string& input) override {
    return exchange({{"tool", o_.name}, {"input", input}, {"prompt", prompt_}, {"turn", turn_++}});
  }

  ToolResult reset() override { return exchange({{"reset", true}, {"prompt", prompt_}}); }

 private:
  // One request line out, one reply line back, within the deadline.
  ToolResult exchange(const Json& req) {
    if (pid_ <= 0) return fatal("could not start: " + start_error_);
    std::string line = req.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    if (!write_all(line)) return fatal("the program does not read its input");
    std::string reply;
    if (std::string why = read_line(reply); !why.empty()) return fatal(why);
    return parse_reply(Json::parse(reply, nullptr, false));
  }

  ToolResult fatal(const std::string& why) const { return {ToolStatus::kFatal, o_.name + ": " + why}; }

  // {"output" | "observation": str, "status": "ok" | "error"}; environments may add
  // "reward": number and "done": bool.
  ToolResult parse_reply(const Json& j) const {
    const char* key = j.is_object() && j.contains("observation") ? "observation" : "output";
    if (!j.is_object() || !j.contains(key) || !j[key].is_string()) {
      return fatal("the reply is not {\"output\": string, ...}");
    }
    const std::string status = j.value("status", std::string("ok"));
    if (status != "ok" && status != "error") return fatal("status must be \"ok\" or \"error\"");
    ToolResult r{status == "ok" ? ToolStatus::kOk : ToolStatus::kError, j[key].get<std::string>()};
    if (j.contains("reward")) {
      if (!o_.environment) return fatal("a reward from a tool that is not an environment");
      if (!j["reward"].is_number() || !std::isfinite(j["reward"].get<double>())) {
        return fatal("reward must be a finite number");
      }
      r.reward = j["reward"].get<double>();
    }
    if (j.contains("done")) {
      if (!o_.environment) return fatal("\"done\" from a tool that is not an environment");
      if (!j["done"].is_boolean()) return fatal("done must be true or false");
      r.done = j["done"].get<bool>();
    }
    return r;
  }

  void start() {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
      start_error_ = std::strerror(errno);
      return;
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
      start_error_ = std::strerror(errno);
      close(in[0]);
      close(in[1]);
      return;
    }
    std::vector<char*> argv;
    for (const auto& a : o_.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      dup2(in[0], 0);
      dup2(out[1], 1);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid_ < 0) {
      start_error_ = std::strerror(errno);
      close(in[1]);
      close(out[0]);
      return;
    }
    setpgid(pid_, pid_);
    to_ = in[1];
    from_ = out[0];
  }

  void stop() {
    if (to_ >= 0) close(to_);
    if (from_ >= 0) close(from_);
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  bool write_all(const std::string& s) {
    // A full pipe means the program is not reading: bounded by the call's deadline.
    signal(SIGPIPE, SIG_IGN);
    size_t done = 0;
    const auto deadline = deadline_after(o_.timeout_s);
    while (done < s.size()) {
      pollfd p{to_, POLLOUT, 0};
      const int ms = remaining_ms(deadline);
      if (ms <= 0 || poll(&p, 1, ms) <= 0) return false;
      const ssize_t w = write(to_, s.data() + done, s.size() - done);
      if (w <= 0) return false;
      done += static_cast<size_t>(w);
    }
    return true;
  }

  // One line from the program within the deadline ("" on success, else why not).
  std::string read_line(std::string& line) {
    const auto deadline = deadline_after(o_.timeout_s);
    for (;;) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return "";
      }
      if (static_cast<int64_t>(buf_.size()) > o_.max_line_bytes) {
        return "a reply line longer than " + std::to_string(o_.max_line_bytes) + " bytes";
      }
      const int ms = remaining_ms(deadline);
      pollfd p{from_, POLLIN, 0};
      if (ms <= 0 || poll(&p, 1, ms) == 0) {
        std::ostringstream why;
        why << "no reply within " << o_.timeout_s << " s";
        return why.str();
      }
      char chunk[65536];
      const ssize_t r = read(from_, chunk, sizeof chunk);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return "the program exited without a reply";
      buf_.append(chunk, static_cast<size_t>(r));
    }
  }

  static std::chrono::steady_clock::time_point deadline_after(double secs) {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(secs));
  }
  static int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                deadline - std::chrono::steady_clock::now())
                                .count());
  }

  const CommandToolOptions& o_;
  std::string prompt_;
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  int64_t turn_ = 0;
  std::string buf_, start_error_;
};

class CommandTool : public rollout::Tool {
 public:
  explicit CommandTool(CommandToolOptions o) : o_(std::move(o)) {
    if (o_.argv.empty()) fail("[tool ", o_.name, "] needs a command");
  }
  std::string name() const override { return o_.name; }
  bool environment() const override { return o_.environment; }
  std::unique_ptr<rollout::ToolSession> open(const std::string& prompt) const override {
    return std::make_unique<CommandSession>(o_, prompt);
  }

 private:
  CommandToolOptions o_;
};

}  // namespace

std::unique_ptr<rollout::Tool> make_command_tool(const CommandToolOptions& o) {
  return std::make_unique<CommandTool>(o);
}

}  // namespace aha::tools
