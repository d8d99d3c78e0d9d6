// External-command reward plugins: a child process speaking JSON lines over a socketpair
// (no SIGPIPE), with a per-sample timeout and a restart after a crash or a timeout.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "aha/rewards/plugin.h"
#include "builtin.h"

namespace aha::rewards {
namespace {

class CommandReward : public RewardFunction {
 public:
  explicit CommandReward(CommandOptions o) : o_(std::move(o)) {
    if (o_.argv.empty()) fail("[command] empty command");
    if (!(o_.timeout_s > 0) || !(o_.startup_timeout_s > 0)) {
      fail("[command] timeout_s and startup_timeout_s must be > 0");
    }
    std::string err = start();
    if (!err.empty()) fail("[command] ", err);
  }
  ~CommandReward() override { stop(); }
  CommandReward(const CommandReward&) = delete;
  CommandReward& operator=(const CommandReward&) = delete;

  RewardResult score(const Sample& s) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (pid_ < 0) {
      if (restarts_ >= o_.max_restarts) {
        return detail::unjudged("command '" + o_.argv[0] + "' gave up after " +
                                std::to_string(restarts_) + " restarts");
      }
      ++restarts_;
      std::string err = start();
      if (!err.empty()) return detail::unjudged(err);
    }
    std::string line =
        sample_to_json(s).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    std::string reply;
    std::string err = exchange(line, reply, fresh_ ? o_.startup_timeout_s : o_.timeout_s);
    fresh_ = false;
    if (!err.empty()) {
      stop();
      return detail::unjudged("command '" + o_.argv[0] + "': " + err);
    }
    Json j = try_parse_json(reply).value_or(Json());
    if (!j.is_object()) return detail::unjudged("command replied with non-JSON: " + reply.substr(0, 200));
    if (j.contains("error")) return detail::unjudged(j["error"].dump());
    if (!j.contains("reward") || !j["reward"].is_number()) {
      return detail::unjudged("command reply lacks a numeric \"reward\"");
    }
    RewardResult r{j["reward"].get<double>(), Json::object()};
    if (j.contains("details") && j["details"].is_object()) r.details = j["details"];
    return r;
  }

 private:
  // Starts the child; returns an error message, empty on success.
  std::string start() const {
    int sv[2], report[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(report, O_CLOEXEC) != 0) {
      return std::string("socketpair: ") + std::strerror(errno);
    }
    std::vector<std::string> store = o_.argv;
    std::vector<char*> argv;
    for (auto& a : store) argv.push_back(a.data());
    argv.push_back(nullptr);
    // the environment is built before fork: the child of a threaded process may not malloc
    std::vector<std::string> env_store{"AHA_REWARD_PARAMS=" + o_.params.dump()};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "AHA_REWARD_PARAMS=", 18) != 0) env_store.emplace_back(*e);
    }
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      dup2(sv[1], 0);
      dup2(sv[1], 1);
      execvpe(argv[0], argv.data(), envp.data());
      int e = errno;
      (void)!write(report[1], &e, sizeof(e));
      _exit(127);
    }
    close(sv[1]);
    close(report[1]);
    int e = 0;
    ssize_t got = pid > 0 ? read(report[0], &e, sizeof(e)) : -1;
    close(report[0]);
    if (pid < 0 || got > 0) {
      close(sv[0]);
      if (pid > 0) waitpid(pid, nullptr, 0);
      return "cannot run '" + o_.argv[0] + "': " + std::strerror(pid < 0 ? errno : e);
    }
    pid_ = pid;
    fd_ = sv[0];
    fresh_ = true;
    buffer_.clear();
    return "";
  }

  void stop() const {
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
    pid_ = -1;
    fd_ = -1;
  }

  // Sends one line and reads one reply line before the deadline.
  std::string exchange(const std::string& line, std::string& reply, double timeout_s) const {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
    for (size_t sent = 0; sent < line.size();) {
      ssize_t n = send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return "process died (write failed)";
      sent += static_cast<size_t>(n);
    }
    while (true) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        reply = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return "";
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return "timed out after " + std::to_string(timeout_s) + " s";
      struct pollfd p{fd_, POLLIN, 0};
      int ready = poll(&p, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) continue;
      char buf[65536];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return "process exited without replying";
      buffer_.append(buf, static_cast<size_t>(n));
      if (buffer_.size() > (64u << 20)) return "reply larger than 64 MiB";
    }
  }

  CommandOptions o_;
  mutable std::mutex mu_;
  mutable pid_t pid_ = -1;
  mutable int fd_ = -1;
  mutable int restarts_ = 0;
  mutable bool fresh_ = false;  // the next reply may include the program's start-up
  mutable std::string buffer_;
};

}  // namespace

std::unique_ptr<RewardFunction> start_command_reward(const CommandOptions& options) {
  return std::make_unique<CommandReward>(options);
}

namespace detail {
std::unique_ptr<RewardFunction> make_command_reward(const Json& p) {
  StrictReader r(p, "command");
  CommandOptions o;
  const Json cmd = r.get<Json>("command", Json());
  if (cmd.is_string()) {
    o.argv = {"/bin/sh", "-c", "exec " + cmd.get<std::string>()};
  } else if (cmd.is_array()) {
    for (const auto& a : cmd) {
      if (!a.is_string()) fail("[command] command must be a list of strings");
      o.argv.push_back(a.get<std::string>());
    }
  } else {
    fail("[command] required key \"command\" (a string or a list of strings)");
  }
  o.timeout_s = r.get<double>("timeout_s", o.timeout_s);
  o.startup_timeout_s = r.get<double>("startup_timeout_s", o.startup_timeout_s);
  o.max_restarts = r.get<int>("max_restarts", o.max_restarts);
  o.params = r.has("params") ? r.child("params") : Json::object();
  r.finish();
  return start_command_reward(o);
}
}  // namespace detail

}  // namespace aha::rewards
