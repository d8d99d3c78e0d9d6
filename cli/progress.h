// A progress line on stderr with rate and ETA: redrawn in place on a terminal, a log line at
// most every few seconds otherwise (so CI logs stay short).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace aha::cli {

class ProgressLine {
 public:
  ProgressLine(std::string what, std::string unit)
      : what_(std::move(what)), unit_(std::move(unit)), tty_(::isatty(2) != 0),
        start_(Clock::now()), last_(start_) {}

  // done of total items; `rate_count` is what the rate counts (tokens, items).
  void update(int64_t done, int64_t total, double rate_count, bool force = false) {
    auto now = Clock::now();
    double since_last = std::chrono::duration<double>(now - last_).count();
    if (force && done == last_done_) return;
    if (!force && since_last < (tty_ ? 0.2 : 5.0)) return;
    last_done_ = done;
    last_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? rate_count / elapsed : 0;
    double eta = done > 0 ? elapsed * double(total - done) / double(done) : 0;
    std::fprintf(stderr, "%s[%s] %lld/%lld  %.1f %s/s  elapsed %s  ETA %s%s", tty_ ? "\r" : "",
                 what_.c_str(), static_cast<long long>(done), static_cast<long long>(total), rate,
                 unit_.c_str(), clock(elapsed).c_str(), clock(eta).c_str(), tty_ ? "  " : "\n");
    std::fflush(stderr);
  }
  void finish() {
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static std::string clock(double s) {
    char buf[32];
    int t = static_cast<int>(s + 0.5);
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
    return buf;
  }
  std::string what_, unit_;
  bool tty_;
  Clock::time_point start_, last_;
  int64_t last_done_ = -1;
};

}  // namespace aha::cli
