// Sampling filters and the per-token bookkeeping training needs to replay them.
#include "aha/rollout/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>

#include "aha/core/error.h"
#include "aha/core/fast_exp.h"

namespace aha::rollout {

void SamplingParams::validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature)) fail("temperature must be >= 0");
  if (top_k < 0) fail("top_k must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) fail("top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p < 1)) fail("min_p must be in [0, 1)");
  if (!(repetition_penalty > 0)) fail("repetition_penalty must be > 0");
  if (max_new_tokens < 1) fail("max_new_tokens must be >= 1");
  for (const auto& s : stop_strings) {
    if (s.empty()) fail("stop strings must not be empty");
  }
}

SamplingParams SamplingParams::from_json(const Json& j) {
  StrictReader r(j, "sampling");
  SamplingParams p;
  p.temperature = r.get<double>("temperature", p.temperature);
  p.top_k = r.get<int>("top_k", p.top_k);
  p.top_p = r.get<double>("top_p", p.top_p);
  p.min_p = r.get<double>("min_p", p.min_p);
  p.repetition_penalty = r.get<double>("repetition_penalty", p.repetition_penalty);
  p.max_new_tokens = r.get<int>("max_new_tokens", p.max_new_tokens);
  p.stop_token_ids = r.get<std::vector<int32_t>>("stop_token_ids", p.stop_token_ids);
  p.stop_strings = r.get<std::vector<std::string>>("stop_strings", p.stop_strings);
  r.finish();
  p.validate();
  return p;
}

namespace {

// e^x for x <= 0, exactly 0 where it underflows: VecExp stops at ~1e-308 instead, which would
// give a masked (-inf) logit a weight.
inline double exp_or_zero(const VecExp<double>& vexp, double x) {
  return x < -708.0 ? 0.0 : vexp(x);
}

typedef float F16 __attribute__((vector_size(64)));

// The index of z's first largest (want_max) or first smallest value, as std::max_element and
// std::min_element give it: the extreme 16 lanes at a time, then the first value equal to it.
// Those scalar loops (one compare and one conditional move each, every one waiting on the last)
// were half of a sampled token's cost. Ties of -0 and +0 fall to the first, as there; with a NaN
// the library's loops run instead.
int first_extreme(const float* z, int n, bool want_max) {
  auto library = [&] {
    return static_cast<int>((want_max ? std::max_element(z, z + n) : std::min_element(z, z + n)) -
                            z);
  };
  const int whole = n / 16 * 16;
  if (whole == 0) return library();
  typedef int32_t I16 __attribute__((vector_size(64)));
  F16 m;
  std::memcpy(&m, z, sizeof(m));
  I16 nan = m != m;
  for (int i = 16; i < whole; i += 16) {
    F16 v;
    std::memcpy(&v, z + i, sizeof(v));
    m = want_max ? (m < v ? v : m) : (v < m ? v : m);
    nan |= v != v;
  }
  float best = m[0];
  bool any_nan = false;
  for (int l = 0; l < 16; ++l) {
    best = want_max ? std::max(best, m[l]) : std::min(best, m[l]);
    any_nan |= nan[l] != 0;
  }
  for (int i = whole; i < n; ++i) {
    best = want_max ? std::max(best, z[i]) : std::min(best, z[i]);
    any_nan |= z[i] != z[i];
  }
  if (any_nan) return library();
  int j = 0;
  for (; j < whole; j += 16) {
    F16 v;
    std::memcpy(&v, z + j, sizeof(v));
    const I16 hit = v == best;
    bool any = false;
    for (int l = 0; l < 16; ++l) any |= hit[l] != 0;
    if (any) break;
  }
  while (z[j] != best) ++j;
  return j;
}

// e[j] = exp(z[j] * inv_temp - mx), 0 where it underflows: a loop that vectorises (glibc's exp
// was most of a sampled token's cost).
void scaled_exps(const float* z, int n, double inv_temp, double mx, double* e) {
  const VecExp<double> vexp;  // a local: its bounds stay in registers
  for (int j = 0; j < n; ++j) e[j] = exp_or_zero(vexp, double(z[j]) * inv_temp - mx);
}

}  // namespace

double log_sum_exp(const float* z, int n, double inv_temp) {
  const double mx = scaled_max(z, n, inv_temp);
  // A block at a time, summed as the trainer's row_stats sums them (LaneSum).
  constexpr int kBlock = 256;
  double e[kBlock];
  LaneSum s;
  for (int i0 = 0; i0 < n; i0 += kBlock) {
    const int m = std::min(kBlock, n - i0);
    scaled_exps(z + i0, m, inv_temp, mx, e);
    s.add(e, m);
  }
  return mx + std::log(s.total());
}

namespace {

// Penalises once per distinct earlier token (HF's rule: divide positive logits, multiply
// negative ones).
void apply_repetition_penalty(std::vector<float>& z, const float* logits, int vocab,
                              const std::vector<int32_t>& history, double penalty) {
  const float pen = static_cast<float>(penalty);
  for (int32_t id : history) {
    if (id < 0 || id >= vocab) continue;
    float& v = z[id];
    if (v != logits[id]) continue;  // already penalised: it differs from the raw logit
    v = v > 0 ? v / pen : v * pen;
  }
}

bool is_filtered(const SamplingParams& p, int vocab) {
  return (p.top_k > 0 && p.top_k < vocab) || p.top_p < 1.0 || p.min_p > 0.0;
}

// All ids by descending logit, ties to the lower id: std::sort's order of the 64-bit keys
// (descending-mapped logit bits << 32 | id), as a stable least-significant-digit radix sort of
// the 32-bit logit keys over the ids in id order, a byte a pass (a pass whose byte is the same
// for every key is skipped). `order` holds the ids in id order on entry. The comparison sort
// was most of a top-p token's cost.
void sort_by_logit(const float* z, int vocab, std::vector<int32_t>& order) {
  thread_local std::vector<uint32_t> keys, keys2;
  thread_local std::vector<int32_t> ids2;
  keys.resize(vocab);
  keys2.resize(vocab);
  ids2.resize(vocab);
  uint32_t count[4][256] = {};
  for (int32_t i = 0; i < vocab; ++i) {
    const float v = z[i] + 0.0f;  // -0 -> +0: they compare equal
    uint32_t u;
    std::memcpy(&u, &v, sizeof(u));
    u = (u & 0x80000000u) ? u : ~(u | 0x80000000u) & 0x7fffffffu;
    keys[i] = u;
    for (int b = 0; b < 4; ++b) ++count[b][(u >> (8 * b)) & 0xffu];
  }
  uint32_t* ku = keys.data();
  uint32_t* kv = keys2.data();
  int32_t* iu = order.data();
  int32_t* iv = ids2.data();
  for (int b = 0; b < 4; ++b) {
    const int shift = 8 * b;
    if (count[b][(ku[0] >> shift) & 0xffu] == uint32_t(vocab)) continue;
    uint32_t start[256];
    uint32_t sum = 0;
    for (int d = 0; d < 256; ++d) {
      start[d] = sum;
      sum += count[b][d];
    }
    for (int32_t i = 0; i < vocab; ++i) {
      const uint32_t at = start[(ku[i] >> shift) & 0xffu]++;
      kv[at] = ku[i];
      iv[at] = iu[i];
    }
    std::swap(ku, kv);
    std::swap(iu, iv);
  }
  if (iu != order.data()) std::copy_n(iu, vocab, order.data());
}

// Candidate ids whose first `kept` entries are the largest logits in descending order (ties to
// the lower id), so every filter keeps a prefix. (Unfiltered, weigh needs no order: see Kept.)
std::vector<int32_t> candidate_order(const float* z, const SamplingParams& p,
                                     int vocab, int& kept) {
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  kept = vocab;
  if (p.top_k > 0 && p.top_k < vocab) {
    kept = p.top_k;
    auto by_logit = [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
    std::partial_sort(order.begin(), order.begin() + kept, order.end(), by_logit);
  } else {
    sort_by_logit(z, vocab, order);
  }
  return order;
}

// Top-p, then min-p, cut the prefix of weights w (w[0] the largest); returns the kept count.
int cut_tail(const double* w, int kept, double total, const SamplingParams& p) {
  if (p.top_p < 1.0) {
    double cum = 0;
    int n = 0;
    while (n < kept) {
      cum += w[n++];
      if (cum >= p.top_p * total) break;
    }
    kept = n;
  }
  if (p.min_p > 0.0) {
    int n = 1;
    while (n < kept && w[n] >= p.min_p * w[0]) ++n;
    kept = n;
  }
  return kept;
}

// The kept candidates of a filtered, tempered distribution: candidates 0..kept with weights
// w[i] = exp(z/T - zmax) summing to total; the kept-set bookkeeping of TokenSample. Candidate i
// is id(i): order[i] under a filter; unfiltered, the ids in id order with the largest moved to
// the front (ids 0 and `top` trade places), so that the weights are taken relative to w[0]. That
// order is implicit (no vector of ids, no gathered weights): a sort or a gather was most of a
// decode step's sampling cost at large vocabularies. w lives in a per-thread buffer, valid until
// this thread weighs again.
struct Kept {
  std::vector<int32_t> order;  // empty when unfiltered
  int32_t top = 0;
  const double* w = nullptr;
  int kept = 0;
  double total = 0;
  float min_logit = 0;
  std::optional<double> raw_lse;  // log_sum_exp(logits, vocab, 1.0), where weighing made it
  int32_t id(int i) const {
    if (!order.empty()) return order[i];
    return i == 0 ? top : i == top ? 0 : i;
  }
};

// raw: z is the logits themselves (no repetition penalty).
Kept weigh(const float* z, const SamplingParams& p, int vocab, bool raw) {
  Kept k;
  const double inv_t = 1.0 / p.temperature;
  thread_local std::vector<double> w;
  w.resize(vocab);
  k.kept = vocab;
  if (!is_filtered(p, vocab)) {
    // Every candidate: the exponentials in id order. At temperature 1 on the raw row they are
    // log_sum_exp's own (the same arguments, when its max is zmax), so the policy's
    // log-sum-exp costs one more sum instead of a second pass. Then the largest trades places
    // with id 0, which makes them the candidates' weights.
    k.top = first_extreme(z, vocab, true);
    const double zmax = z[k.top] * inv_t;
    scaled_exps(z, vocab, inv_t, zmax, w.data());
    if (raw && inv_t == 1.0 && scaled_max(z, vocab, 1.0) == zmax) {
      LaneSum s;
      s.add(w.data(), vocab);
      k.raw_lse = zmax + std::log(s.total());
    }
    std::swap(w[0], w[k.top]);
  } else {
    k.order = candidate_order(z, p, vocab, k.kept);
    // The candidates' logits gathered first: read through `order`, the exponentials stayed
    // scalar.
    thread_local std::vector<float> picked;
    picked.resize(k.kept);
    for (int i = 0; i < k.kept; ++i) picked[i] = z[k.order[i]];
    scaled_exps(picked.data(), k.kept, inv_t, z[k.order[0]] * inv_t, w.data());
  }
  k.w = w.data();
  LaneSum all;
  all.add(k.w, k.kept);
  const double total = all.total();
  const int weighed = k.kept;
  k.kept = cut_tail(k.w, k.kept, total, p);
  if (k.kept == weighed) {
    k.total = total;  // the same sum in the same order
  } else {
    LaneSum kept;
    kept.add(k.w, k.kept);
    k.total = kept.total();
  }
  k.min_logit = k.order.empty() ? z[first_extreme(z, vocab, false)] : z[k.order[k.kept - 1]];
  return k;
}

// The kept set, ascending, when a filter truncated it.
void kept_set(const Kept& k, int vocab, std::vector<int32_t>& ids) {
  if (k.kept >= vocab) return;
  ids.assign(k.order.begin(), k.order.begin() + k.kept);
  std::sort(ids.begin(), ids.end());
}

// Returns the raw row's log-sum-exp where weighing made it on the way (Kept::raw_lse).
std::optional<double> sample_filtered(const float* z, const SamplingParams& p,
                                      int vocab, bool raw, Rng& rng, TokenSample& out,
                                      std::vector<int32_t>* kept_ids) {
  const Kept k = weigh(z, p, vocab, raw);
  double u = rng.uniform() * k.total, cum = 0;
  int pick = k.kept - 1;
  for (int i = 0; i < k.kept; ++i) {
    cum += k.w[i];
    if (u < cum) {
      pick = i;
      break;
    }
  }
  out.token = k.id(pick);
  out.logprob = static_cast<float>(std::log(k.w[pick] / k.total));
  out.n_kept = k.kept;
  out.kept_min_logit = k.min_logit;
  if (kept_ids != nullptr) kept_set(k, vocab, *kept_ids);
  return k.raw_lse;
}

// The logits the filters see: the row itself, or a copy in z with the repetition penalty.
const float* penalised(const float* logits, int vocab, const SamplingParams& p,
                       const std::vector<int32_t>& history, std::vector<float>& z) {
  if (p.repetition_penalty == 1.0) return logits;
  z.assign(logits, logits + vocab);
  apply_repetition_penalty(z, logits, vocab, history, p.repetition_penalty);
  return z.data();
}

}  // namespace

TokenSample sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng,
                         const std::vector<int32_t>& history, std::vector<float>& z,
                         std::vector<int32_t>* kept_ids) {
  if (kept_ids != nullptr) kept_ids->clear();
  const float* zp = penalised(logits, vocab, p, history, z);
  TokenSample out;
  std::optional<double> lse;
  if (p.greedy()) {
    out.token = first_extreme(zp, vocab, true);
    out.logprob = 0.0f;
    out.n_kept = 1;
    out.kept_min_logit = zp[out.token];
  } else {
    lse = sample_filtered(zp, p, vocab, zp == logits, rng, out, kept_ids);
  }
  if (!lse) lse = log_sum_exp(logits, vocab, 1.0);
  out.policy_logprob = static_cast<float>(logits[out.token] - *lse);
  return out;
}

void sampling_dist(const float* logits, int vocab, const SamplingParams& p,
                   const std::vector<int32_t>& history, std::vector<float>& z, SamplingDist& out) {
  const float* zp = penalised(logits, vocab, p, history, z);
  out.prob.assign(vocab, 0.0);
  out.kept_ids.clear();
  if (p.greedy()) {
    out.policy_lse = log_sum_exp(logits, vocab, 1.0);
    const int32_t top = first_extreme(zp, vocab, true);
    out.prob[top] = 1.0;
    out.n_kept = 1;
    out.kept_min_logit = zp[top];
    return;
  }
  // sample_filtered's weights, so that the logprobs agree bit for bit.
  const Kept k = weigh(zp, p, vocab, zp == logits);
  out.policy_lse = k.raw_lse ? *k.raw_lse : log_sum_exp(logits, vocab, 1.0);
  for (int i = 0; i < k.kept; ++i) out.prob[k.id(i)] = k.w[i] / k.total;
  out.n_kept = k.kept;
  out.kept_min_logit = k.min_logit;
  kept_set(k, vocab, out.kept_ids);
}

namespace {

// Inverse CDF of unnormalised weights w (total their sum) in id order.
int32_t draw_weights(const std::vector<double>& w, double total, Rng& rng) {
  const double u = rng.uniform() * total;
  double cum = 0;
  int32_t last = -1;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] <= 0) continue;
    cum += w[i];
    last = static_cast<int32_t>(i);
    if (u < cum) return last;
  }
  AHA_CHECK(last >= 0, "drawing from an empty distribution");
  return last;  // rounding left u at the very top
}

}  // namespace

int32_t draw(const std::vector<double>& prob, Rng& rng) {
  double total = 0;
  for (double v : prob) total += v;
  return draw_weights(prob, total, rng);
}

int32_t speculative_pick(const SamplingDist& p, const std::vector<double>& q, int32_t draft,
                         Rng& rng, bool& accepted) {
  const double pd = p.prob[draft], qd = q[draft];
  accepted = qd > 0 && rng.uniform() * qd < pd;  // u < p(d) / q(d)
  if (accepted) return draft;
  std::vector<double> residual(p.prob.size());
  double total = 0;
  for (size_t i = 0; i < residual.size(); ++i) {
    total += (residual[i] = std::max(0.0, p.prob[i] - q[i]));
  }
  // p == q leaves nothing, but then the draft was accepted with probability 1.
  return total > 0 ? draw_weights(residual, total, rng) : draw(p.prob, rng);
}

TokenSample sample_of(const SamplingDist& p, const float* logits, int32_t token) {
  TokenSample t;
  t.token = token;
  t.logprob = static_cast<float>(std::log(p.prob[token]));
  t.policy_logprob = static_cast<float>(logits[token] - p.policy_lse);
  t.n_kept = p.n_kept;
  t.kept_min_logit = p.kept_min_logit;
  return t;
}

}  // namespace aha::rollout
