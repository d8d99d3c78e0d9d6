// Wall time spent in the blocks' sublayers, for benchmarks: `aha bench generate` splits a decode
// step into attention, MoE/MLP and the rest with it, from the outside of the decoder.
// Off unless a BlockProfileScope lives: then every block_forward, on any thread, adds its times
// to the scope's counters (sums over calls: with concurrent forwards they exceed elapsed time).
// When off it costs one relaxed atomic load per block.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace aha::policy {

struct BlockProfile {
  std::atomic<int64_t> block_ns{0};      // whole block_forward calls
  std::atomic<int64_t> attention_ns{0};  // the attention sublayers (projections included)
  std::atomic<int64_t> ffn_ns{0};        // the MoE or dense MLP sublayers (router included)
  void reset() { block_ns = 0, attention_ns = 0, ffn_ns = 0; }
};

// Makes `p` the process's profile while it lives; one scope at a time.
class BlockProfileScope {
 public:
  explicit BlockProfileScope(BlockProfile& p);
  ~BlockProfileScope();
  BlockProfileScope(const BlockProfileScope&) = delete;
  BlockProfileScope& operator=(const BlockProfileScope&) = delete;
};

// The live scope's profile, nullptr when none.
BlockProfile* active_block_profile();

// Adds the wall time of its own lifetime to *counter; does nothing when counter is nullptr.
class ScopedNs {
 public:
  explicit ScopedNs(std::atomic<int64_t>* counter)
      : counter_(counter), t0_(counter ? Clock::now() : Clock::time_point{}) {}
  ~ScopedNs() {
    if (counter_ != nullptr) {
      counter_->fetch_add(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0_).count(),
          std::memory_order_relaxed);
    }
  }
  ScopedNs(const ScopedNs&) = delete;
  ScopedNs& operator=(const ScopedNs&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  std::atomic<int64_t>* counter_;
  Clock::time_point t0_;
};

}  // namespace aha::policy
