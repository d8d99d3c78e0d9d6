// Native sparse attention (NSA, arXiv 2502.11089) on GQA projections, in the form of fla-org's
// reference (one K/V shared by the branches, mean-pooled compression, sigmoid gates from
// g_proj): per query head, o = g_cmp * o_cmp + g_slc * o_slc + g_win * o_win where
//   o_cmp attends to the means of the complete key/value blocks before the query,
//   o_slc attends to the tokens of block_counts blocks chosen per GQA group by the group's summed
//         compressed-attention probabilities (the first and the query's own block always kept),
//   o_win attends to the last window_size tokens.
// The selection is discrete: backward holds it fixed, as the paper does.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "aha/core/error.h"
#include "attention_impl.h"

namespace aha::policy {

namespace {

// Slots: q, k, v after RoPE; sigmoid gates [n, Hq, 3]; the branch outputs [n, Hq, hd]; the
// window branch's lse [Hq, n] and the selection branch's [Hk][G * n]; block means [n, kw] at the
// last token of each complete block (zero elsewhere); compressed probabilities (see cmp_offsets).
enum Slot { kQ, kK, kV, kGate, kOc, kOs, kOw, kLseW, kLseS, kKc, kVc, kPc, kO, kSlots };

class NsaAttention final : public AttentionImpl<NsaAttention> {
 public:
  NsaAttention(ParamTable& t, const std::string& prefix, const ModelConfig& c,
               const RopeTable& rope, NsaOptions o)
      : AttentionImpl(c), c_(c), rope_(rope), o_opts_(o) {
    const int d = c.hidden_size, hd = c.head_dim, Hq = c.num_attention_heads;
    q_ = add_linear(t, prefix + ".q_proj", d, Hq * hd, c.attention_bias);
    k_ = add_linear(t, prefix + ".k_proj", d, c.num_key_value_heads * hd, c.attention_bias);
    v_ = add_linear(t, prefix + ".v_proj", d, c.num_key_value_heads * hd, c.attention_bias);
    g_ = add_linear(t, prefix + ".g_proj", d, 3 * Hq);
    o_ = add_linear(t, prefix + ".o_proj", Hq * hd, d);
  }

  AttentionKind kind() const override { return AttentionKind::kNsa; }
  // Keys, values and the block means at each block's last token.
  int64_t cache_width() const override { return 4 * kv_width(); }
  int64_t full_kv_width() const override { return 2 * kv_width(); }

  template <typename T>
  void fwd(const T* P, const T* x, T* y, const SeqLayout& layout, AttnActs<T>& a) const;
  template <typename T>
  void bwd(const T* P, T* G, const T* x, const T* dy, T* dx, const SeqLayout& layout,
           const AttnActs<T>& a) const;

  void cache_rows(const AttnActs<float>& a, int64_t n, float* rows) const override {
    const int64_t kw = kv_width(), W = cache_width();
    for (int64_t t = 0; t < n; ++t) {
      std::copy_n(a[kK].data() + t * kw, kw, rows + t * W);
      std::copy_n(a[kV].data() + t * kw, kw, rows + t * W + kw);
      std::copy_n(a[kKc].data() + t * kw, kw, rows + t * W + 2 * kw);
      std::copy_n(a[kVc].data() + t * kw, kw, rows + t * W + 3 * kw);
    }
  }

  void decode_rows(const float* P, const float* h, float* y, const DecodeStep& step) const;

  // Per token and kv group, the selected blocks in ascending order, -1 padded to block_counts.
  int64_t selection_width() const override {
    return int64_t{c_.num_key_value_heads} * o_opts_.block_counts;
  }
  void selection_rows(const AttnActs<float>& a, int64_t n, int32_t* out) const override {
    const int Hk = c_.num_key_value_heads;
    const int64_t S = o_opts_.block_counts;
    for (int64_t t = 0; t < n; ++t) {
      for (int kh = 0; kh < Hk; ++kh) {
        blocks_of(a.selected[size_t(kh) * n + t], out + (t * Hk + kh) * S);
      }
    }
  }

 private:
  // The distinct blocks of an ascending key list, -1 padded to block_counts.
  void blocks_of(const std::vector<int32_t>& keys, int32_t* out) const {
    const int64_t S = o_opts_.block_counts, bs = o_opts_.block_size;
    std::fill(out, out + S, -1);
    int64_t k = 0;
    for (int32_t j : keys) {
      const int32_t b = static_cast<int32_t>(j / bs);
      if (k > 0 && out[k - 1] == b) continue;
      AHA_CHECK(k < S, "more selected blocks than block_counts");
      out[k++] = b;
    }
  }
  // The keys of replayed blocks (any order, -1 ignored) for a query at position i.
  void keys_of(const int32_t* blocks, int64_t i, std::vector<int32_t>& keys) const {
    const int64_t S = o_opts_.block_counts, bs = o_opts_.block_size;
    std::vector<int32_t> b(blocks, blocks + S);
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    keys.clear();
    for (int32_t c : b) {
      if (c < 0) continue;
      if (c > i / bs) fail("replayed NSA block ", c, " lies after the query at position ", i);
      for (int64_t j = c * bs; j < std::min<int64_t>((c + 1) * bs, i + 1); ++j) {
        keys.push_back(int32_t(j));
      }
    }
    if (keys.empty()) fail("a replayed NSA selection is empty at position ", i);
  }

  int64_t kv_width() const { return int64_t{c_.num_key_value_heads} * c_.head_dim; }
  int group() const { return c_.num_attention_heads / c_.num_key_value_heads; }
  // Complete blocks a query at in-sequence position i may see in the compressed branch.
  int64_t visible(int64_t i) const { return (i + 1) / o_opts_.block_size; }
  // Offsets of each token's compressed probabilities [Hq, visible] in slot kPc; last = total.
  std::vector<int64_t> cmp_offsets(const SeqLayout& layout) const {
    std::vector<int64_t> off(layout.n_tokens() + 1, 0);
    for (int64_t t = 0; t < layout.n_tokens(); ++t) {
      off[t + 1] = off[t] + visible(layout.positions[t]) * c_.num_attention_heads;
    }
    return off;
  }
  // The blocks a query keeps: the first and its own, then the highest scores (lower index on
  // ties); score[c] for c < visible, blocks after the query's own never.
  template <typename T>
  void choose_blocks(const T* score, int64_t i, std::vector<int32_t>& keys) const;

  template <typename T>
  void block_means(const T* kv, T* means, const SeqLayout& layout) const;
  template <typename T>
  void compressed_forward(const T* q, const T* kc, const T* vc, T* o, T* p,
                          const SeqLayout& layout) const;
  template <typename T>
  void select(const T* p, const SeqLayout& layout, const int32_t* replay,
              std::vector<std::vector<int32_t>>& sel) const;
  template <typename T>
  void per_group(const T* src, T* dst, int64_t n, int kh, int heads, int64_t width,
                 bool gather) const;
  // The branches' backward: dout is the branch output's gradient; dq, dk, dv accumulate.
  template <typename T>
  void selected_backward(const T* dout, const SeqLayout& layout, const AttnActs<T>& a, T* dq,
                         T* dk, T* dv) const;
  template <typename T>
  void compressed_backward(const T* dout, const SeqLayout& layout, const AttnActs<T>& a, T* dq,
                           T* dk, T* dv) const;

  const ModelConfig& c_;
  const RopeTable& rope_;
  NsaOptions o_opts_;
  LinearP q_, k_, v_, g_, o_;
};

template <typename T>
T sigmoid(T a) {
  return T(1) / (T(1) + std::exp(-a));
}

template <typename T>
void NsaAttention::choose_blocks(const T* score, int64_t i, std::vector<int32_t>& keys) const {
  const int64_t bs = o_opts_.block_size, own = i / bs, nv = visible(i);
  std::vector<int64_t> order(own + 1);
  std::iota(order.begin(), order.end(), 0);
  auto rank = [&](int64_t c) {  // forced blocks first, then by score
    if (c == 0 || c == own) return std::numeric_limits<double>::infinity();
    return c < nv ? double(score[c]) : -std::numeric_limits<double>::infinity();
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return rank(a) > rank(b); });
  order.resize(std::min<int64_t>(order.size(), o_opts_.block_counts));
  std::sort(order.begin(), order.end());
  keys.clear();
  for (int64_t c : order) {
    for (int64_t j = c * bs; j < std::min((c + 1) * bs, i + 1); ++j) keys.push_back(int32_t(j));
  }
}

template <typename T>
void NsaAttention::block_means(const T* kv, T* means, const SeqLayout& layout) const {
  const int64_t kw = kv_width(), bs = o_opts_.block_size, n = layout.n_tokens();
  std::fill(means, means + n * kw, T(0));
  for (int64_t t = 0; t < n; ++t) {
    const int64_t i = layout.positions[t];
    if ((i + 1) % bs != 0) continue;
    T* m = means + t * kw;
    for (int64_t j = t - bs + 1; j <= t; ++j) {
      for (int64_t e = 0; e < kw; ++e) m[e] += kv[j * kw + e];
    }
    for (int64_t e = 0; e < kw; ++e) m[e] /= T(bs);
  }
}

template <typename T>
void NsaAttention::compressed_forward(const T* q, const T* kc, const T* vc, T* o, T* p,
                                      const SeqLayout& layout) const {
  const int Hq = c_.num_attention_heads, hd = c_.head_dim, G = group();
  const int64_t kw = kv_width(), bs = o_opts_.block_size, n = layout.n_tokens();
  const T scale = static_cast<T>(c_.softmax_scale());
  const auto off = cmp_offsets(layout);
  tbb::parallel_for(int64_t{0}, n, [&](int64_t t) {
    const int64_t i = layout.positions[t], nv = visible(i), first = t - i;
    for (int h = 0; h < Hq; ++h) {
      T* out = o + (t * Hq + h) * hd;
      std::fill(out, out + hd, T(0));
      if (nv == 0) continue;  // no complete block yet: the branch gives 0
      T* pr = p + off[t] + int64_t{h} * nv;
      const T* qh = q + (t * Hq + h) * hd;
      const int64_t kh = h / G;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t c = 0; c < nv; ++c) {
        const T* kr = kc + (first + (c + 1) * bs - 1) * kw + kh * hd;
        T s = 0;
        for (int e = 0; e < hd; ++e) s += qh[e] * kr[e];
        pr[c] = s * scale;
        mx = std::max(mx, pr[c]);
      }
      T sum = 0;
      for (int64_t c = 0; c < nv; ++c) sum += (pr[c] = std::exp(pr[c] - mx));
      for (int64_t c = 0; c < nv; ++c) {
        pr[c] /= sum;
        const T* vr = vc + (first + (c + 1) * bs - 1) * kw + kh * hd;
        for (int e = 0; e < hd; ++e) out[e] += pr[c] * vr[e];
      }
    }
  });
}

template <typename T>
void NsaAttention::select(const T* p, const SeqLayout& layout, const int32_t* replay,
                          std::vector<std::vector<int32_t>>& sel) const {
  const int Hk = c_.num_key_value_heads, G = group();
  const int64_t n = layout.n_tokens(), S = o_opts_.block_counts;
  const auto off = cmp_offsets(layout);
  sel.assign(size_t(Hk) * n, {});
  if (replay != nullptr) {  // the sampler's blocks (a replay of -1 everywhere: choose afresh)
    for (int64_t t = 0; t < n; ++t) {
      for (int kh = 0; kh < Hk; ++kh) {
        const int32_t* r = replay + (t * Hk + kh) * S;
        if (std::all_of(r, r + S, [](int32_t b) { return b < 0; })) continue;
        keys_of(r, layout.positions[t], sel[size_t(kh) * n + t]);
      }
    }
  }
  tbb::parallel_for(int64_t{0}, n, [&](int64_t t) {
    const int64_t i = layout.positions[t], nv = visible(i);
    std::vector<T> score(nv);
    for (int kh = 0; kh < Hk; ++kh) {
      if (!sel[size_t(kh) * n + t].empty()) continue;  // replayed
      std::fill(score.begin(), score.end(), T(0));
      for (int g = 0; g < G; ++g) {
        const T* pr = p + off[t] + int64_t{kh * G + g} * nv;
        for (int64_t c = 0; c < nv; ++c) score[c] += pr[c];
      }
      choose_blocks(score.data(), i, sel[size_t(kh) * n + t]);
    }
  });
}

// Copies the `heads` heads of kv group kh between a [n, all heads, hd] buffer and a packed
// [n, heads, hd] one (gather: into dst packed; else scatter back, adding).
template <typename T>
void NsaAttention::per_group(const T* src, T* dst, int64_t n, int kh, int heads, int64_t width,
                             bool gather) const {
  const int hd = c_.head_dim;
  const int64_t gw = int64_t{heads} * hd;
  for (int64_t t = 0; t < n; ++t) {
    if (gather) {
      std::copy_n(src + t * width + kh * gw, gw, dst + t * gw);
    } else {
      for (int64_t e = 0; e < gw; ++e) dst[t * width + kh * gw + e] += src[t * gw + e];
    }
  }
}

template <typename T>
void NsaAttention::fwd(const T* P, const T* x, T* y, const SeqLayout& layout,
                       AttnActs<T>& a) const {
  const int64_t n = layout.n_tokens(), kw = kv_width();
  const int Hq = c_.num_attention_heads, Hk = c_.num_key_value_heads, hd = c_.head_dim;
  const int G = group();
  a.buf.assign(kSlots, {});
  resize_for_overwrite(a[kQ], n * Hq * hd);
  resize_for_overwrite(a[kK], n * kw);
  resize_for_overwrite(a[kV], n * kw);
  resize_for_overwrite(a[kGate], n * Hq * 3);
  linear_forward(q_, P, x, a[kQ].data(), n, a.rowstable);
  linear_forward(k_, P, x, a[kK].data(), n, a.rowstable);
  linear_forward(v_, P, x, a[kV].data(), n, a.rowstable);
  linear_forward(g_, P, x, a[kGate].data(), n, a.rowstable);
  for (T& g : a[kGate]) g = sigmoid(g);
  rope_.apply(a[kQ].data(), layout.positions.data(), n, Hq, int64_t{Hq} * hd, hd, false);
  rope_.apply(a[kK].data(), layout.positions.data(), n, Hk, kw, hd, false);
  // Compressed branch, then the selection it implies.
  resize_zeroed(a[kKc], n * kw);
  resize_zeroed(a[kVc], n * kw);
  block_means(a[kK].data(), a[kKc].data(), layout);
  block_means(a[kV].data(), a[kVc].data(), layout);
  resize_zeroed(a[kOc], n * Hq * hd);
  resize_zeroed(a[kPc], cmp_offsets(layout).back());
  compressed_forward(a[kQ].data(), a[kKc].data(), a[kVc].data(), a[kOc].data(), a[kPc].data(),
                     layout);
  select(a[kPc].data(), layout, a.replay, a.selected);
  // Selected blocks: one kernel call per kv group (each group keeps its own blocks).
  a[kOs].assign(n * Hq * hd, T(0));
  resize_zeroed(a[kLseS], int64_t{Hk} * G * n);
  Buf<T> qg(n * G * hd), kg(n * hd), vg(n * hd), og(n * G * hd);
  for (int kh = 0; kh < Hk; ++kh) {
    per_group(a[kQ].data(), qg.data(), n, kh, G, int64_t{Hq} * hd, true);
    per_group(a[kK].data(), kg.data(), n, kh, 1, kw, true);
    per_group(a[kV].data(), vg.data(), n, kh, 1, kw, true);
    std::vector<std::vector<int32_t>> sel(a.selected.begin() + int64_t{kh} * n,
                                          a.selected.begin() + int64_t{kh + 1} * n);
    AttnShape s{G, 1, hd, hd, c_.softmax_scale()};
    s.selected = &sel;
    attention_forward(qg.data(), kg.data(), vg.data(), og.data(),
                      a[kLseS].data() + int64_t{kh} * G * n, layout.seq_starts, s);
    per_group(og.data(), a[kOs].data(), n, kh, G, int64_t{Hq} * hd, false);
  }
  // Sliding window over the same keys.
  a[kOw].assign(n * Hq * hd, T(0));
  resize_zeroed(a[kLseW], int64_t{Hq} * n);
  if (o_opts_.window_size > 0) {
    AttnShape s{Hq, Hk, hd, hd, c_.softmax_scale()};
    s.window = o_opts_.window_size;
    attention_forward(a[kQ].data(), a[kK].data(), a[kV].data(), a[kOw].data(), a[kLseW].data(),
                      layout.seq_starts, s);
  }
  resize_zeroed(a[kO], n * Hq * hd);
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < Hq; ++h) {
      const T* g = a[kGate].data() + (t * Hq + h) * 3;
      const int64_t r = (t * Hq + h) * hd;
      for (int e = 0; e < hd; ++e) {
        a[kO][r + e] = g[0] * a[kOc][r + e] + g[1] * a[kOs][r + e] + g[2] * a[kOw][r + e];
      }
    }
  }
  linear_forward(o_, P, a[kO].data(), y, n, a.rowstable);
}

// The selection branch, per kv group, over the forward's blocks.
template <typename T>
void NsaAttention::selected_backward(const T* dout, const SeqLayout& layout, const AttnActs<T>& a,
                                     T* dq, T* dk, T* dv) const {
  const int64_t n = layout.n_tokens(), kw = kv_width();
  const int Hq = c_.num_attention_heads, Hk = c_.num_key_value_heads, hd = c_.head_dim;
  const int G = group();
  const int64_t qw = int64_t{Hq} * hd;
  Buf<T> qg(n * G * hd), kg(n * hd), vg(n * hd), og(n * G * hd), dog(n * G * hd);
  Buf<T> dqg(n * G * hd), dkg(n * hd), dvg(n * hd);
  for (int kh = 0; kh < Hk; ++kh) {
    per_group(a[kQ].data(), qg.data(), n, kh, G, qw, true);
    per_group(a[kK].data(), kg.data(), n, kh, 1, kw, true);
    per_group(a[kV].data(), vg.data(), n, kh, 1, kw, true);
    per_group(a[kOs].data(), og.data(), n, kh, G, qw, true);
    per_group(dout, dog.data(), n, kh, G, qw, true);
    std::vector<std::vector<int32_t>> sel(a.selected.begin() + int64_t{kh} * n,
                                          a.selected.begin() + int64_t{kh + 1} * n);
    AttnShape s{G, 1, hd, hd, c_.softmax_scale()};
    s.selected = &sel;
    attention_backward(dog.data(), qg.data(), kg.data(), vg.data(), og.data(),
                       a[kLseS].data() + int64_t{kh} * G * n, dqg.data(), dkg.data(),
                       dvg.data(), layout.seq_starts, s);
    per_group(dqg.data(), dq, n, kh, G, qw, false);
    per_group(dkg.data(), dk, n, kh, 1, kw, false);
    per_group(dvg.data(), dv, n, kh, 1, kw, false);
  }
}

// The compressed branch: a softmax over the block means, whose gradient spreads evenly over
// each block's tokens.
template <typename T>
void NsaAttention::compressed_backward(const T* dout, const SeqLayout& layout,
                                       const AttnActs<T>& a, T* dq, T* dk, T* dv) const {
  const int64_t n = layout.n_tokens(), kw = kv_width();
  const int Hq = c_.num_attention_heads, hd = c_.head_dim, G = group();
  const int64_t bs = o_opts_.block_size;
  const auto off = cmp_offsets(layout);
  const T scale = static_cast<T>(c_.softmax_scale());
  Buf<T> dkc(n * kw, T(0)), dvc(n * kw, T(0));
  const T* kc = a[kKc].data();
  const T* vc = a[kVc].data();
  for (int64_t t = 0; t < n; ++t) {
    const int64_t i = layout.positions[t], nv = visible(i), first = t - i;
    if (nv == 0) continue;
    for (int h = 0; h < Hq; ++h) {
      const T* pr = a[kPc].data() + off[t] + int64_t{h} * nv;
      const T* g = dout + (t * Hq + h) * hd;
      const T* qh = a[kQ].data() + (t * Hq + h) * hd;
      T* dqh = dq + (t * Hq + h) * hd;
      const int64_t kh = h / G;
      std::vector<T> dp(nv);
      T dot = 0;
      for (int64_t c = 0; c < nv; ++c) {
        const int64_t row = (first + (c + 1) * bs - 1) * kw + kh * hd;
        T s = 0;
        for (int e = 0; e < hd; ++e) {
          s += g[e] * vc[row + e];
          dvc[row + e] += pr[c] * g[e];
        }
        dp[c] = s;
        dot += pr[c] * s;
      }
      for (int64_t c = 0; c < nv; ++c) {
        const T ds = pr[c] * (dp[c] - dot) * scale;
        const int64_t row = (first + (c + 1) * bs - 1) * kw + kh * hd;
        for (int e = 0; e < hd; ++e) {
          dqh[e] += ds * kc[row + e];
          dkc[row + e] += ds * qh[e];
        }
      }
    }
  }
  for (int64_t t = 0; t < n; ++t) {  // block means: each of the block's tokens gets 1/bs
    if ((layout.positions[t] + 1) % bs != 0) continue;
    for (int64_t j = t - bs + 1; j <= t; ++j) {
      for (int64_t e = 0; e < kw; ++e) {
        dk[j * kw + e] += dkc[t * kw + e] / T(bs);
        dv[j * kw + e] += dvc[t * kw + e] / T(bs);
      }
    }
  }
}

template <typename T>
void NsaAttention::bwd(const T* P, T* G_, const T* x, const T* dy, T* dx, const SeqLayout& layout,
                       const AttnActs<T>& a) const {
  const int64_t n = layout.n_tokens(), kw = kv_width();
  const int Hq = c_.num_attention_heads, Hk = c_.num_key_value_heads, hd = c_.head_dim;
  const int64_t qw = int64_t{Hq} * hd;
  ScratchBuf<T> d_o(static_cast<size_t>(n * qw));  // written by the first product
  linear_backward(o_, P, G_, a[kO].data(), dy, d_o.data(), n, true);
  // Gates and the branches' output gradients.
  Buf<T> dgate(n * Hq * 3), doc(n * qw), dos(n * qw), dow(n * qw);
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < Hq; ++h) {
      const T* g = a[kGate].data() + (t * Hq + h) * 3;
      const int64_t r = (t * Hq + h) * hd;
      T dg[3] = {0, 0, 0};
      for (int e = 0; e < hd; ++e) {
        dg[0] += d_o[r + e] * a[kOc][r + e];
        dg[1] += d_o[r + e] * a[kOs][r + e];
        dg[2] += d_o[r + e] * a[kOw][r + e];
        doc[r + e] = g[0] * d_o[r + e];
        dos[r + e] = g[1] * d_o[r + e];
        dow[r + e] = g[2] * d_o[r + e];
      }
      for (int b = 0; b < 3; ++b) dgate[(t * Hq + h) * 3 + b] = dg[b] * g[b] * (1 - g[b]);
    }
  }
  linear_backward(g_, P, G_, x, dgate.data(), dx, n);
  Buf<T> dq(n * qw, T(0)), dk(n * kw, T(0)), dv(n * kw, T(0));
  // Window branch.
  if (o_opts_.window_size > 0) {
    Buf<T> tq(n * qw), tk(n * kw), tv(n * kw);
    AttnShape s{Hq, Hk, hd, hd, c_.softmax_scale()};
    s.window = o_opts_.window_size;
    attention_backward(dow.data(), a[kQ].data(), a[kK].data(), a[kV].data(), a[kOw].data(),
                       a[kLseW].data(), tq.data(), tk.data(), tv.data(), layout.seq_starts, s);
    for (int64_t i = 0; i < n * qw; ++i) dq[i] += tq[i];
    for (int64_t i = 0; i < n * kw; ++i) {
      dk[i] += tk[i];
      dv[i] += tv[i];
    }
  }
  selected_backward(dos.data(), layout, a, dq.data(), dk.data(), dv.data());
  compressed_backward(doc.data(), layout, a, dq.data(), dk.data(), dv.data());
  rope_.apply(dq.data(), layout.positions.data(), n, Hq, qw, hd, true);
  rope_.apply(dk.data(), layout.positions.data(), n, Hk, kw, hd, true);
  linear_backward(q_, P, G_, x, dq.data(), dx, n);
  linear_backward(k_, P, G_, x, dk.data(), dx, n);
  linear_backward(v_, P, G_, x, dv.data(), dx, n);
}

// Attention of `heads` query rows over the listed cache rows' keys/values (kv head kh): the
// rows are gathered, then one score GEMM for all the group's heads and one in-order value GEMM,
// as GQA's decode does; every output is a fixed-order pass, so a sequence's result does not
// depend on the batch.
void attend_rows(const float* q, int heads, const std::vector<int64_t>& rows, const float* cache,
                 int64_t W, int64_t k_off, int64_t v_off, int hd, float scale, float* out) {
  const int64_t R = static_cast<int64_t>(rows.size());
  thread_local std::vector<float> kv, s;
  kv.resize(2 * R * hd);
  s.resize(int64_t{heads} * R);
  for (int64_t r = 0; r < R; ++r) {
    std::copy_n(cache + rows[r] * W + k_off, hd, kv.data() + r * hd);
    std::copy_n(cache + rows[r] * W + v_off, hd, kv.data() + (R + r) * hd);
  }
  gemm_xwt_rowstable_serial(q, kv.data(), static_cast<const float*>(nullptr), s.data(), heads, hd,
                            R);
  scaled_softmax_rows(s.data(), heads, R, scale);
  gemm_xw_seq(s.data(), kv.data() + R * hd, out, heads, R, hd, hd);
}

void NsaAttention::decode_rows(const float* P, const float* h, float* y,
                               const DecodeStep& step) const {
  const int64_t B = static_cast<int64_t>(step.rows.size());
  const int Hq = c_.num_attention_heads, Hk = c_.num_key_value_heads, hd = c_.head_dim;
  const int G = group();
  const int64_t kw = kv_width(), W = cache_width(), bs = o_opts_.block_size;
  const int32_t* pos = step.positions;
  Buf<float> q(B * Hq * hd), k(B * kw), v(B * kw), gate(B * Hq * 3);
  linear_stable(q_, P, h, q.data(), B);
  linear_stable(k_, P, h, k.data(), B);
  linear_stable(v_, P, h, v.data(), B);
  linear_stable(g_, P, h, gate.data(), B);
  rope_.apply(q.data(), pos, B, Hq, int64_t{Hq} * hd, hd, false);
  rope_.apply(k.data(), pos, B, Hk, kw, hd, false);
  for (int64_t b = 0; b < B; ++b) {
    auto& rows = *step.rows[b];
    const int64_t i = pos[b];
    rows.resize((i + 1) * W);
    float* row = rows.data() + i * W;
    std::copy_n(k.data() + b * kw, kw, row);
    std::copy_n(v.data() + b * kw, kw, row + kw);
    std::fill(row + 2 * kw, row + 4 * kw, 0.0f);
    if ((i + 1) % bs == 0) {  // this token completes a block: store its means
      for (int64_t j = i - bs + 1; j <= i; ++j) {
        for (int64_t e = 0; e < 2 * kw; ++e) row[2 * kw + e] += rows[j * W + e];
      }
      for (int64_t e = 0; e < 2 * kw; ++e) row[2 * kw + e] /= float(bs);
    }
  }
  const float scale = static_cast<float>(c_.softmax_scale());
  Buf<float> o(B * Hq * hd, 0.0f);
  if (step.selections != nullptr) step.selections->assign(B * selection_width(), -1);
  tbb::parallel_for(int64_t{0}, B * Hk, [&](int64_t task) {
    const int64_t b = task / Hk, i = pos[b], nv = visible(i);
    const int kh = static_cast<int>(task % Hk);
    const float* cache = step.rows[b]->data();
    const float* qg = q.data() + (b * Hq + int64_t{kh} * G) * hd;
    std::vector<float> oc(G * hd, 0.0f), os(G * hd), ow(G * hd, 0.0f), score(nv, 0.0f);
    std::vector<int64_t> rows;
    if (nv > 0) {  // compressed: the block means, and the group's summed probabilities
      for (int64_t c = 0; c < nv; ++c) rows.push_back((c + 1) * bs - 1);
      for (int g = 0; g < G; ++g) {
        std::vector<float> s(nv);
        for (int64_t c = 0; c < nv; ++c) {
          s[c] = dot_stable(qg + int64_t{g} * hd, cache + rows[c] * W + 2 * kw + kh * hd, hd);
        }
        scaled_softmax_rows(s.data(), 1, nv, scale);
        for (int64_t c = 0; c < nv; ++c) {
          score[c] += s[c];
          const float* vr = cache + rows[c] * W + 3 * kw + kh * hd;
          for (int e = 0; e < hd; ++e) oc[g * hd + e] += s[c] * vr[e];
        }
      }
    }
    std::vector<int32_t> keys;
    choose_blocks(score.data(), i, keys);
    if (step.selections != nullptr) {
      blocks_of(keys, step.selections->data() + (b * Hk + kh) * o_opts_.block_counts);
    }
    rows.assign(keys.begin(), keys.end());
    attend_rows(qg, G, rows, cache, W, kh * hd, kw + kh * hd, hd, scale, os.data());
    if (o_opts_.window_size > 0) {
      rows.clear();
      for (int64_t j = std::max<int64_t>(0, i - o_opts_.window_size + 1); j <= i; ++j) {
        rows.push_back(j);
      }
      attend_rows(qg, G, rows, cache, W, kh * hd, kw + kh * hd, hd, scale, ow.data());
    }
    for (int g = 0; g < G; ++g) {
      const int hq = kh * G + g;
      const float* gl = gate.data() + (b * Hq + hq) * 3;
      const float g0 = sigmoid(gl[0]), g1 = sigmoid(gl[1]), g2 = sigmoid(gl[2]);
      float* out = o.data() + (b * Hq + hq) * hd;
      for (int e = 0; e < hd; ++e) {
        out[e] = g0 * oc[g * hd + e] + g1 * os[g * hd + e] + g2 * ow[g * hd + e];
      }
    }
  });
  linear_stable(o_, P, o.data(), y, B);
}

}  // namespace

std::unique_ptr<Attention> make_nsa(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope, NsaOptions o) {
  return std::make_unique<NsaAttention>(t, prefix, c, rope, o);
}

}  // namespace aha::policy
