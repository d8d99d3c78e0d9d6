#include "weight_cache.h"

#include "aha/core/rng.h"
#include "bf16_pack.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace aha {

namespace {

struct Key {
  const float* p;
  int64_t n, k;
  WeightForm form;
  int64_t variant;
  bool operator==(const Key& o) const {
    return p == o.p && n == o.n && k == o.k && form == o.form && variant == o.variant;
  }
};

// A full mix of every field: weights sit at aligned addresses a fixed size apart, and a plain
// xor of the fields put many of a model's weights in one bucket chain.
struct KeyHash {
  size_t operator()(const Key& w) const {
    uint64_t h = splitmix64_mix(reinterpret_cast<uintptr_t>(w.p));
    h = splitmix64_mix(h ^ uint64_t(w.n));
    h = splitmix64_mix(h ^ uint64_t(w.k));
    h = splitmix64_mix(h ^ uint64_t(w.variant));
    return size_t(splitmix64_mix(h ^ uint64_t(w.form)));
  }
};

using Range = std::pair<const float*, const float*>;

std::mutex g_mu;
std::vector<Range> g_scopes;  // the live scopes' ranges
std::unordered_map<Key, std::unique_ptr<CachedWeight>, KeyHash> g_map;
// Bumped (under g_mu) whenever a scope closes, the only time entries are freed.
std::atomic<uint64_t> g_closes{0};
int64_t g_bytes = 0;   // what g_map's entries hold (or will, once made)
int64_t g_budget = 0;  // the most they may hold; set when the first scope opens

int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

int64_t bytes_of(const Key& key) {
  switch (key.form) {
    case WeightForm::f32_panels: return round16(key.n) * key.k * 4;
    case WeightForm::bf16_panels: return round16(key.n) * bf16::pair_stride(key.k) * 4;
    case WeightForm::bf16_rounded: return key.n * 4;
    case WeightForm::bf16_blocks: return key.n * 2;
    case WeightForm::bf16_blocks_tail_t: return key.n * key.k * 2;
  }
  return 0;
}

// AHA_WEIGHT_CACHE_MB, or a quarter of the machine's memory: a generate() call of a model that
// fills much of memory keeps copies of only part of its weights and packs the rest per call,
// instead of running out of memory. The values are the same either way.
int64_t budget() {
  if (const char* e = std::getenv("AHA_WEIGHT_CACHE_MB"); e != nullptr && *e != '\0') {
    return std::max<int64_t>(0, std::atoll(e)) << 20;
  }
  return int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGESIZE)) / 4;
}

// Under g_mu.
bool covered(const float* p, int64_t extent) {
  return std::any_of(g_scopes.begin(), g_scopes.end(), [&](const Range& r) {
    return p >= r.first && p < r.second && extent <= r.second - p;
  });
}

int64_t extent_of(const Key& key) { return key.k == 0 ? key.n : key.n * key.k; }

// The entries this thread has found, valid while no scope has closed since: a decode step looks
// up each weight once per product, and taking g_mu for each was 2-3% of a batch-16 step, most of
// it the two threads contending for the lock. An entry seen under a live scope stays until a
// scope closes; scopes that open only cover more. Open addressing in one array, because the
// step streams its weights through the caches between lookups: a chained map's nodes were a
// cache miss or two per lookup.
class Seen {
 public:
  CachedWeight* find(const Key& key, uint64_t closes) {
    if (closes != closes_) {
      std::fill(slots_.begin(), slots_.end(), Slot{});
      used_ = 0;
      closes_ = closes;
      return nullptr;
    }
    if (slots_.empty()) return nullptr;
    for (size_t i = KeyHash()(key) & mask();; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (s.entry == nullptr) return nullptr;
      if (s.key == key) return s.entry;
    }
  }

  void add(const Key& key, CachedWeight* entry) {
    if (2 * (used_ + 1) > slots_.size()) grow();
    size_t i = KeyHash()(key) & mask();
    while (slots_[i].entry != nullptr) i = (i + 1) & mask();
    slots_[i] = Slot{key, entry};
    ++used_;
  }

 private:
  struct Slot {
    Key key{nullptr, 0, 0, WeightForm::f32_panels, 0};
    CachedWeight* entry = nullptr;
  };

  size_t mask() const { return slots_.size() - 1; }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, 2 * old.size()), Slot{});
    used_ = 0;
    for (const Slot& s : old) {
      if (s.entry != nullptr) add(s.key, s.entry);
    }
  }

  uint64_t closes_ = ~uint64_t{0};
  std::vector<Slot> slots_;  // a power of two, at most half full
  size_t used_ = 0;
};
thread_local Seen t_seen;

CachedWeight* locked_lookup(const Key& key) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_scopes.empty() || !covered(key.p, extent_of(key))) return nullptr;
  auto it = g_map.find(key);
  if (it != g_map.end()) return it->second.get();
  if (g_bytes + bytes_of(key) > g_budget) return nullptr;
  g_bytes += bytes_of(key);
  return g_map.emplace(key, std::make_unique<CachedWeight>()).first->second.get();
}

}  // namespace

WeightCache::WeightCache(const float* data, int64_t n)
    : begin_(data), end_(data + std::max<int64_t>(n, 0)) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_scopes.empty()) g_budget = budget();
  g_scopes.emplace_back(begin_, end_);
}

WeightCache::~WeightCache() {
  std::vector<std::unique_ptr<CachedWeight>> dropped;  // freed outside the lock
  std::lock_guard<std::mutex> lock(g_mu);
  g_closes.fetch_add(1, std::memory_order_release);
  g_scopes.erase(std::find(g_scopes.begin(), g_scopes.end(), Range{begin_, end_}));
  for (auto it = g_map.begin(); it != g_map.end();) {
    if (covered(it->first.p, extent_of(it->first))) {
      ++it;
    } else {
      g_bytes -= bytes_of(it->first);
      dropped.push_back(std::move(it->second));
      it = g_map.erase(it);
    }
  }
}

CachedWeight* cached_weight(const float* w, int64_t n, int64_t k, WeightForm form,
                            int64_t variant) {
  const Key key{w, n, k, form, variant};
  Seen& seen = t_seen;
  if (CachedWeight* e = seen.find(key, g_closes.load(std::memory_order_acquire))) return e;
  CachedWeight* e = locked_lookup(key);
  if (e != nullptr) seen.add(key, e);
  return e;
}

int64_t weight_cache_bytes() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_bytes;
}

}  // namespace aha
