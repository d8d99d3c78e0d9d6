#include "weight_cache.h"

#include <algorithm>
#include <functional>
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
  auto& e = g_map[key];
  if (!e) e = std::make_shared<CachedWeight>();
  return e;
}

}  // namespace aha
