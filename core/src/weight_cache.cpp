#include "weight_cache.h"

#include <functional>
#include <unordered_map>

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

}  // namespace

struct WeightCache::Impl {
  std::mutex mu;
  std::unordered_map<Key, std::shared_ptr<CachedWeight>, KeyHash> map;
};

namespace {

std::mutex g_cache_mu;
int g_cache_users = 0;
std::shared_ptr<WeightCache::Impl> g_cache;

}  // namespace

WeightCache::WeightCache() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  if (g_cache_users++ == 0) g_cache = std::make_shared<Impl>();
}

WeightCache::~WeightCache() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  if (--g_cache_users == 0) g_cache.reset();
}

std::shared_ptr<CachedWeight> cached_weight(const float* w, int64_t n, int64_t k,
                                            WeightForm form) {
  std::shared_ptr<WeightCache::Impl> cache;
  {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    cache = g_cache;
  }
  if (cache == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(cache->mu);
  auto& e = cache->map[Key{w, n, k, form}];
  if (!e) e = std::make_shared<CachedWeight>();
  return e;
}

}  // namespace aha
