#include "aha/policy/profile.h"

#include "aha/core/error.h"

namespace aha::policy {

namespace {
// The one process-wide switch of the profile (benchmarks only; null in every other run).
std::atomic<BlockProfile*> g_profile{nullptr};
}  // namespace

BlockProfileScope::BlockProfileScope(BlockProfile& p) {
  BlockProfile* none = nullptr;
  AHA_CHECK(g_profile.compare_exchange_strong(none, &p), "one BlockProfileScope at a time");
}

BlockProfileScope::~BlockProfileScope() { g_profile.store(nullptr); }

BlockProfile* active_block_profile() { return g_profile.load(std::memory_order_relaxed); }

}  // namespace aha::policy
