// Threading setup: one runtime (TBB). ThreadLimit caps TBB's worker count for its lifetime.
#pragma once

#include <memory>

namespace aha {

// The number of threads TBB may use right now.
int max_threads();

// Caps parallelism to n threads (n <= 0: all cores) while alive. Non-copyable.
class ThreadLimit {
 public:
  explicit ThreadLimit(int n);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aha
