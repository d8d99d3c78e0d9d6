// The engine's tool threads (engine.cpp): tool calls and environment resets run here, off the
// decode loop. Seq is the engine's live sequence: it has `sessions` (tool name -> session) and
// `out.prompt_text`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aha/rollout/episode.h"

namespace aha::rollout {

// Runs tool calls on threads of their own: a call blocks on a child process or a pipe for up to
// its time limit, which would stall a TBB worker the decode kernels need.
// Thread-safe: submit and take from the engine thread, the work on the tool threads.
template <typename Seq>
class BasicToolRunner {
 public:
  struct Done {
    Seq* seq;
    ToolResult result;
    double seconds;
  };

  explicit BasicToolRunner(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { work(); });
  }
  ~BasicToolRunner() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  BasicToolRunner(const BasicToolRunner&) = delete;
  BasicToolRunner& operator=(const BasicToolRunner&) = delete;

  // reset: the environment's reset() instead of a call.
  void submit(Seq* seq, const Tool* tool, ToolCall call, bool reset = false) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back({seq, tool, std::move(call), reset});
      ++running_;
    }
    cv_.notify_all();
  }
  int running() {
    std::lock_guard lock(mu_);
    return running_;
  }
  // The calls finished since the last take; with `block`, waits for at least one.
  std::vector<Done> take(bool block) {
    std::unique_lock lock(mu_);
    if (block) done_cv_.wait(lock, [&] { return !done_.empty() || running_ == 0; });
    std::vector<Done> out = std::move(done_);
    done_.clear();
    return out;
  }

 private:
  struct Job {
    Seq* seq;
    const Tool* tool;
    ToolCall call;
    bool reset = false;
  };

  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      const auto t0 = std::chrono::steady_clock::now();
      ToolResult r;
      try {
        auto& session = job.seq->sessions[job.tool->name()];
        if (!session) session = job.tool->open(job.seq->out.prompt_text);
        r = job.reset ? session->reset() : session->call(job.call.input);
      } catch (const std::exception& e) {
        r = {ToolStatus::kFatal, std::string("the tool failed: ") + e.what()};
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      {
        std::lock_guard lock(mu_);
        done_.push_back({job.seq, std::move(r), secs});
        --running_;
      }
      done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Job> jobs_;
  std::vector<Done> done_;
  int running_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace aha::rollout
