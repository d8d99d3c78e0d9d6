// Attempt budget of the rejection-sampling generators (synthetic tasks, countdown).
#pragma once

#include <cstdint>

namespace aha::datasets {

// More attempts while fewer than n examples exist, at most `per_example` attempts per example
// in all, and never `kStall` attempts in a row without a new one: a space of distinct problems
// smaller than n (e.g. 1-digit sums) ends in well under a second instead of n * 100 attempts.
class GenBudget {
 public:
  static constexpr int64_t kStall = 200000;
  GenBudget(int64_t n, int64_t per_example)
      : n_(n), max_(n > INT64_MAX / per_example ? INT64_MAX : n * per_example) {}
  bool more(int64_t have) {
    if (have != last_) {
      last_ = have;
      stall_ = 0;
    }
    return have < n_ && attempt_++ < max_ && stall_++ < kStall;
  }

 private:
  int64_t n_, max_;
  int64_t attempt_ = 0, last_ = -1, stall_ = 0;
};

}  // namespace aha::datasets
