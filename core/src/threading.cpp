// TBB global_control wrapper.
#include "aha/core/threading.h"

#include <tbb/global_control.h>
#include <tbb/info.h>

namespace aha {

struct ThreadLimit::Impl {
  explicit Impl(int n) : control(tbb::global_control::max_allowed_parallelism, n) {}
  tbb::global_control control;
};

int max_threads() {
  return static_cast<int>(
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
}

ThreadLimit::ThreadLimit(int n) {
  if (n <= 0) n = tbb::info::default_concurrency();
  impl_ = std::make_unique<Impl>(n);
}

ThreadLimit::~ThreadLimit() = default;

}  // namespace aha
