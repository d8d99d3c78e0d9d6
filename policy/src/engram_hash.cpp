// Engram's n-gram hashing, as deepseek-ai/Engram's demo computes it: numpy's default_rng for the
// multipliers (SeedSequence -> PCG64 -> bounded integers, reimplemented bit-exact), the
// repeated next-prime search for the moduli and the multiplicative-XOR hash.
#include <algorithm>
#include <array>
#include <limits>
#include <set>

#include "aha/core/error.h"
#include "aha/policy/engram.h"

namespace aha::policy {

namespace {

using u128 = unsigned __int128;

// numpy's SeedSequence(seed).generate_state(4, uint64) with a pool of four 32-bit words.
std::array<uint64_t, 4> seed_sequence_state(uint64_t seed) {
  constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd,
                     kMultB = 0x58f38ded, kMixL = 0xca01f9dd, kMixR = 0x4973f715;
  constexpr int kShift = 16, kPool = 4;
  std::vector<uint32_t> entropy;
  if (seed == 0) entropy.push_back(0);
  for (uint64_t s = seed; s > 0; s >>= 32) entropy.push_back(static_cast<uint32_t>(s));
  uint32_t hash_const = kInitA;
  auto hashmix = [&](uint32_t v) {
    v ^= hash_const;
    hash_const *= kMultA;
    v *= hash_const;
    return v ^ (v >> kShift);
  };
  auto mix = [](uint32_t x, uint32_t y) {
    uint32_t r = kMixL * x - kMixR * y;
    return r ^ (r >> kShift);
  };
  std::array<uint32_t, kPool> pool{};
  for (int i = 0; i < kPool; ++i) pool[i] = hashmix(i < int(entropy.size()) ? entropy[i] : 0);
  for (int src = 0; src < kPool; ++src) {
    for (int dst = 0; dst < kPool; ++dst) {
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  for (size_t src = kPool; src < entropy.size(); ++src) {
    for (int dst = 0; dst < kPool; ++dst) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  uint32_t hb = kInitB;
  std::array<uint32_t, 8> words{};
  for (int i = 0; i < 8; ++i) {
    uint32_t v = pool[i % kPool] ^ hb;
    hb *= kMultB;
    v *= hb;
    words[i] = v ^ (v >> kShift);
  }
  std::array<uint64_t, 4> out{};  // little-endian pairs, as numpy's view(uint64)
  for (int i = 0; i < 4; ++i) out[i] = uint64_t{words[2 * i]} | (uint64_t{words[2 * i + 1]} << 32);
  return out;
}

constexpr u128 kPcgMult = (u128{2549297995355413924ULL} << 64) | 4865540595714422341ULL;

// Deterministic Miller-Rabin for 64-bit n.
bool is_prime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t p : {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}) {
    if (n % p == 0) return n == p;
  }
  auto mulmod = [n](uint64_t a, uint64_t b) { return static_cast<uint64_t>(u128{a} * b % n); };
  auto powmod = [&](uint64_t a, uint64_t e) {
    uint64_t r = 1;
    for (; e; e >>= 1, a = mulmod(a, a)) {
      if (e & 1) r = mulmod(r, a);
    }
    return r;
  };
  uint64_t d = n - 1;
  int s = 0;
  for (; d % 2 == 0; d /= 2) ++s;
  for (uint64_t a : {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}) {
    uint64_t x = powmod(a, d);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int i = 1; i < s && composite; ++i) {
      x = mulmod(x, x);
      composite = x != n - 1;
    }
    if (composite) return false;
  }
  return true;
}

}  // namespace

NumpyRng::NumpyRng(uint64_t seed) {
  const auto s = seed_sequence_state(seed);
  const u128 init_state = (u128{s[0]} << 64) | s[1];
  const u128 init_seq = (u128{s[2]} << 64) | s[3];
  inc_ = (init_seq << 1) | 1;
  state_ = 0;
  state_ = state_ * kPcgMult + inc_;
  state_ += init_state;
  state_ = state_ * kPcgMult + inc_;
}

uint64_t NumpyRng::next_u64() {
  state_ = state_ * kPcgMult + inc_;
  const uint64_t hi = static_cast<uint64_t>(state_ >> 64), lo = static_cast<uint64_t>(state_);
  const unsigned rot = static_cast<unsigned>(hi >> 58);
  const uint64_t x = hi ^ lo;
  return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t NumpyRng::next_u32() {
  if (has_u32_) {
    has_u32_ = false;
    return u32_;
  }
  const uint64_t v = next_u64();
  has_u32_ = true;
  u32_ = static_cast<uint32_t>(v >> 32);
  return static_cast<uint32_t>(v);
}

std::vector<int64_t> NumpyRng::integers(int64_t low, int64_t high, int64_t size) {
  AHA_CHECK(high > low, "integers: empty range [", low, ", ", high, ")");
  const uint64_t rng = static_cast<uint64_t>(high) - static_cast<uint64_t>(low) - 1;
  const uint64_t off = static_cast<uint64_t>(low);
  std::vector<int64_t> out(size);
  for (int64_t i = 0; i < size; ++i) {
    uint64_t v = 0;
    if (rng == 0) {
      v = 0;
    } else if (rng == 0xFFFFFFFFULL) {
      v = next_u32();
    } else if (rng < 0xFFFFFFFFULL) {  // Lemire on 32 bits
      const uint32_t excl = static_cast<uint32_t>(rng) + 1;
      uint64_t m = uint64_t{next_u32()} * excl;
      uint32_t left = static_cast<uint32_t>(m);
      if (left < excl) {
        const uint32_t threshold = (0xFFFFFFFFU - static_cast<uint32_t>(rng)) % excl;
        while (left < threshold) {
          m = uint64_t{next_u32()} * excl;
          left = static_cast<uint32_t>(m);
        }
      }
      v = m >> 32;
    } else if (rng == std::numeric_limits<uint64_t>::max()) {
      v = next_u64();
    } else {  // Lemire on 64 bits
      const uint64_t excl = rng + 1;
      u128 m = u128{next_u64()} * excl;
      uint64_t left = static_cast<uint64_t>(m);
      if (left < excl) {
        const uint64_t threshold = (std::numeric_limits<uint64_t>::max() - rng) % excl;
        while (left < threshold) {
          m = u128{next_u64()} * excl;
          left = static_cast<uint64_t>(m);
        }
      }
      v = static_cast<uint64_t>(m >> 64);
    }
    out[i] = static_cast<int64_t>(off + v);
  }
  return out;
}

int64_t engram_compressed_vocab(const EngramConfig& g, int vocab_size) {
  if (!g.compression || g.compression->empty()) return vocab_size;
  return int64_t{*std::max_element(g.compression->begin(), g.compression->end())} + 1;
}

std::vector<std::vector<int64_t>> engram_primes(const EngramConfig& g) {
  std::set<int64_t> seen;
  std::vector<std::vector<int64_t>> out;
  for (size_t l = 0; l < g.layer_ids.size(); ++l) {
    std::vector<int64_t> layer;
    for (int n = 2; n <= g.max_ngram_size; ++n) {
      int64_t start = g.engram_vocab_size[n - 2] - 1;
      for (int h = 0; h < g.n_head_per_ngram; ++h) {
        int64_t p = start + 1;
        while (!is_prime(static_cast<uint64_t>(p)) || seen.count(p)) ++p;
        seen.insert(p);
        layer.push_back(p);
        start = p;
      }
    }
    out.push_back(std::move(layer));
  }
  return out;
}

std::vector<int64_t> engram_multipliers(const EngramConfig& g, int vocab_size, int layer) {
  const int64_t max_mult =
      std::numeric_limits<int64_t>::max() / engram_compressed_vocab(g, vocab_size);
  const int64_t half = std::max<int64_t>(1, max_mult / 2);
  NumpyRng rng(static_cast<uint64_t>(g.seed + 10007 * int64_t{layer}));
  std::vector<int64_t> r = rng.integers(0, half, g.max_ngram_size);
  for (int64_t& v : r) v = 2 * v + 1;
  return r;
}

EngramHash make_engram_hash(const EngramConfig& g, int vocab_size, int layer) {
  EngramHash h;
  h.layer = layer;
  h.max_ngram = g.max_ngram_size;
  h.heads_per_ngram = g.n_head_per_ngram;
  h.multipliers = engram_multipliers(g, vocab_size, layer);
  const auto all = engram_primes(g);
  const auto at = std::find(g.layer_ids.begin(), g.layer_ids.end(), layer);
  AHA_CHECK(at != g.layer_ids.end(), "layer ", layer, " has no Engram");
  h.primes = all[at - g.layer_ids.begin()];
  for (int64_t p : h.primes) {
    h.offsets.push_back(h.rows);
    h.rows += p;
  }
  h.compression = g.compression;
  if (h.compression && !h.compression->empty()) {
    AHA_CHECK(static_cast<int>(h.compression->size()) == vocab_size, "compression table of ",
              h.compression->size(), " ids for a vocabulary of ", vocab_size);
  }
  h.pad = h.compress(g.pad_id);
  return h;
}

void engram_hash_indices(const EngramHash& h, const int32_t* ngram_ids, int64_t n, int64_t* idx) {
  const int N = h.max_ngram, H = h.heads_per_ngram;
  for (int64_t t = 0; t < n; ++t) {
    const int32_t* ids = ngram_ids + t * N;
    int64_t mix = 0;
    for (int j = 0; j < N; ++j) {
      const int64_t x = ids[j] < 0 ? h.pad : h.compress(ids[j]);
      // x < |V'| and m < int64 max / |V'|: the product does not overflow, as in the demo.
      mix = j == 0 ? x * h.multipliers[0] : mix ^ (x * h.multipliers[j]);
      if (j == 0) continue;
      for (int k = 0; k < H; ++k) {
        const int head = (j - 1) * H + k;
        idx[t * (N - 1) * H + head] = mix % h.primes[head];
      }
    }
  }
}

std::vector<int32_t> engram_ngram_ids(const int32_t* tokens, const SeqLayout& layout, int N) {
  const int64_t n = layout.n_tokens();
  std::vector<int32_t> ids(n * N, -1);
  for (size_t s = 0; s + 1 < layout.seq_starts.size(); ++s) {
    const int64_t t0 = layout.seq_starts[s], t1 = layout.seq_starts[s + 1];
    for (int64_t t = t0; t < t1; ++t) {
      for (int j = 0; j < N && t - j >= t0; ++j) ids[t * N + j] = tokens[t - j];
    }
  }
  return ids;
}

}  // namespace aha::policy
