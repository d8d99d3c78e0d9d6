#include "weight_cache.h"

#include "bf16_pack.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>

namespace aha {

namespace {

struct Key {
  const float* p;
  int64_t n, k;
  WeightForm form;
  bool operator==(const Key& o) const {
    return p == o.p && n == o.n && k == o.k && form == o.form;
  }
};

struct KeyHash {
  size_t operator()(const Key& w) const {
    return std::hash<const void*>()(w.p) ^ (size_t(w.n) * 0x9e3779b97f4a7c15ull) ^
           (size_t(w.k) << 1) ^ (size_t(w.form) << 7);
  }
};

using Range = std::pair<const float*, const float*>;

std::mutex g_mu;
std::vector<Range> g_scopes;  // the live scopes' ranges
std::unordered_map<Key, std::shared_ptr<CachedWeight>, KeyHash> g_map;
int64_t g_bytes = 0;   // what g_map's entries hold (or will, once made)
int64_t g_budget = 0;  // the most they may hold; set when the first scope opens

int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

int64_t bytes_of(const Key& key) {
  switch (key.form) {
    case WeightForm::f32_panels: return round16(key.n) * key.k * 4;
    case WeightForm::bf16_panels: return round16(key.n) * bf16::pair_stride(key.k) * 4;
    case WeightForm::bf16_rounded: return key.n * 4;
    case WeightForm::bf16_blocks: return key.n * 2;
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

}  // namespace

WeightCache::WeightCache(const float* data, int64_t n)
    : begin_(data), end_(data + std::max<int64_t>(n, 0)) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_scopes.empty()) g_budget = budget();
  g_scopes.emplace_back(begin_, end_);
}

WeightCache::~WeightCache() {
  std::vector<std::shared_ptr<CachedWeight>> dropped;  // freed outside the lock
  std::lock_guard<std::mutex> lock(g_mu);
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

std::shared_ptr<CachedWeight> cached_weight(const float* w, int64_t n, int64_t k,
                                            WeightForm form) {
  const Key key{w, n, k, form};
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_scopes.empty() || !covered(w, extent_of(key))) return nullptr;
  auto it = g_map.find(key);
  if (it != g_map.end()) return it->second;
  if (g_bytes + bytes_of(key) > g_budget) return nullptr;
  g_bytes += bytes_of(key);
  return g_map.emplace(key, std::make_shared<CachedWeight>()).first->second;
}

int64_t weight_cache_bytes() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_bytes;
}

}  // namespace aha
