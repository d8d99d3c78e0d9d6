// DeepSeek Sparse Attention (DeepSeek-V3.2, model_type deepseek_v32): MLA in which each query
// attends only to the index_topk keys its lightning indexer scores highest,
//   I[t,s] = sum_h w[t,h] * ReLU(q[t,h] . k[s]),
// with q from MLA's normed query latent through indexer.wq_b, one key per token
// k = LayerNorm(x W_k) shared by the heads, and w = x W_w / sqrt(H_I * d_I). The indexer rotates
// the FIRST qk_rope_head_dim values of q and k in rotate-half pairs (i, i + d/2), the opposite
// of MLA's [nope | rope] interleaved layout, as DeepSeek's fixed reference does. A query at
// position i with i + 1 <= index_topk keeps every causal key: short rows are dense MLA exactly.
//
// The selection is discrete: the main model's backward holds it fixed, and the indexer learns
// only from its KL loss to the main attention (indexer_loss), whose inputs are detached.
// Ties: equal scores rank by position, the earlier key first (a stable order), so a selection
// does not depend on threads, batch or the order keys were scored in.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "aha/core/error.h"
#include "attn_mla.h"

namespace aha::policy {

namespace {

// After MLA's slots: the indexer's rotated queries [n, H_I, d_I], rotated normed keys [n, d_I],
// keys before the norm [n, d_I], the norm's mean and 1/std [n], and the head weights [n, H_I]
// (already scaled by 1/sqrt(H_I * d_I)).
enum Slot { kIq = kMlaSlots, kIk, kIkRaw, kIkMean, kIkRstd, kIw, kSlots };

constexpr double kIndexerNormEps = 1e-6;

class DsaAttention final : public AttentionImpl<DsaAttention> {
 public:
  DsaAttention(ParamTable& t, const std::string& prefix, const ModelConfig& c,
               const RopeTable& rope)
      : AttentionImpl(c), c_(c), rope_(rope), mla_(t, prefix, c, rope) {
    const std::string ip = prefix + ".indexer";
    const int HI = c.index_n_heads, dI = c.index_head_dim;
    wq_b_ = add_linear(t, ip + ".wq_b", *c.q_lora_rank, HI * dI);
    wk_ = add_linear(t, ip + ".wk", c.hidden_size, dI);
    k_norm_ = add_norm(t, ip + ".k_norm.weight", dI);
    k_norm_bias_ = t.add(ip + ".k_norm.bias", {dI});
    weights_proj_ = add_linear(t, ip + ".weights_proj", c.hidden_size, HI);
  }

  AttentionKind kind() const override { return AttentionKind::kDsa; }
  // MLA's latent row, then the indexer's key.
  int64_t cache_width() const override { return mla_.latent_width() + c_.index_head_dim; }
  int64_t full_kv_width() const override { return mla_.full_kv_width() + c_.index_head_dim; }

  template <typename T>
  void fwd(const T* P, const T* x, T* y, const SeqLayout& layout, AttnActs<T>& a) const {
    a.buf.resize(kSlots);
    mla_.project(P, x, layout, a);
    index_project(P, x, a[kQan].data(), layout.positions.data(), layout.n_tokens(), a, a.rowstable);
    select(layout, a);
    mla_.attend(P, y, layout, a, &a.selected);
  }
  template <typename T>
  void bwd(const T* P, T* G, const T* x, const T* dy, T* dx, const SeqLayout& layout,
           const AttnActs<T>& a) const {
    mla_.backward(P, G, x, dy, dx, layout, a, &a.selected);
  }

  void cache_rows(const AttnActs<float>& a, int64_t n, float* rows) const override {
    const int64_t W = cache_width(), lw = mla_.latent_width(), dI = c_.index_head_dim;
    mla_.latent_rows(a, n, rows, W);
    for (int64_t t = 0; t < n; ++t) std::copy_n(a[kIk].data() + t * dI, dI, rows + t * W + lw);
  }
  void decode_rows(const float* P, const float* h, float* y, const DecodeStep& step) const;

  // Per token, its selected key positions in ascending order, -1 padded to index_topk.
  int64_t selection_width() const override { return c_.index_topk; }
  void selection_rows(const AttnActs<float>& a, int64_t n, int32_t* out) const override {
    const int64_t K = c_.index_topk;
    for (int64_t t = 0; t < n; ++t) {
      const auto& s = a.selected[t];
      std::fill(out + t * K, out + (t + 1) * K, -1);
      std::copy(s.begin(), s.end(), out + t * K);
    }
  }

  double indexer_loss(const float* P, float* G, const float* x, const SeqLayout& layout,
                      const AttnActs<float>& a, IndexerSupport support,
                      double weight) const override {
    return loss(P, G, x, layout, a, support, weight);
  }
  double indexer_loss(const double* P, double* G, const double* x, const SeqLayout& layout,
                      const AttnActs<double>& a, IndexerSupport support,
                      double weight) const override {
    return loss(P, G, x, layout, a, support, weight);
  }

 private:
  // The indexer's slots for n tokens x [n, d_model] with normed query latents qan; stable: the
  // batch-invariant GEMMs of the decode path.
  template <typename T>
  void index_project(const T* P, const T* x, const T* qan, const int32_t* positions, int64_t n,
                     AttnActs<T>& a, bool stable) const;
  // I[t, s] for the `count` keys k (rows ldk apart) of the query with rotated heads q [H_I, d_I]
  // and weights w [H_I].
  template <typename T>
  void score_row(const T* q, const T* w, const T* k, int64_t ldk, int64_t count, T* out) const;
  // The top index_topk of the `count` causal keys' scores, ascending; all of them when
  // count <= index_topk.
  template <typename T>
  void top_keys(const T* score, int64_t count, std::vector<int32_t>& keys) const;
  // a.selected: the replayed keys where a replay row is given, else the indexer's choice.
  template <typename T>
  void select(const SeqLayout& layout, AttnActs<T>& a) const;
  template <typename T>
  double loss(const T* P, T* G, const T* x, const SeqLayout& layout, const AttnActs<T>& a,
              IndexerSupport support, double weight) const;
  // The gradient of the indexer's slots (dq, dk rotated; dw of the scaled weights) into its
  // tensors.
  template <typename T>
  void index_backward(const T* P, T* G, const T* x, const SeqLayout& layout, const AttnActs<T>& a,
                      Buf<T>& dq, Buf<T>& dk, Buf<T>& dw) const;

  double weight_scale() const {
    return 1.0 / std::sqrt(double(c_.index_n_heads) * double(c_.index_head_dim));
  }

  const ModelConfig& c_;
  const RopeTable& rope_;
  MlaCore mla_;
  LinearP wq_b_, wk_, weights_proj_;
  NormP k_norm_;
  size_t k_norm_bias_ = kNoParam;
};

template <typename T>
void DsaAttention::index_project(const T* P, const T* x, const T* qan, const int32_t* positions,
                                 int64_t n, AttnActs<T>& a, bool stable) const {
  const int HI = c_.index_n_heads, dI = c_.index_head_dim;
  resize_zeroed(a[kIq], n * HI * dI);
  resize_zeroed(a[kIkRaw], n * dI);
  resize_zeroed(a[kIw], n * HI);
  auto linear = [&](const LinearP& p, const T* in, T* out) {
    if constexpr (std::is_same_v<T, float>) {
      if (stable) return linear_stable(p, P, in, out, n);
    }
    linear_forward(p, P, in, out, n);
  };
  linear(wq_b_, qan, a[kIq].data());
  linear(wk_, x, a[kIkRaw].data());
  linear(weights_proj_, x, a[kIw].data());
  for (T& w : a[kIw]) w *= static_cast<T>(weight_scale());
  // k = LayerNorm(k_raw) with bias.
  resize_zeroed(a[kIk], n * dI);
  resize_zeroed(a[kIkMean], n);
  resize_zeroed(a[kIkRstd], n);
  const T* g = P + k_norm_.w;
  const T* b = P + k_norm_bias_;
  for (int64_t t = 0; t < n; ++t) {
    const T* r = a[kIkRaw].data() + t * dI;
    T mean = 0, var = 0;
    for (int e = 0; e < dI; ++e) mean += r[e];
    mean /= T(dI);
    for (int e = 0; e < dI; ++e) var += (r[e] - mean) * (r[e] - mean);
    const T rstd = T(1) / std::sqrt(var / T(dI) + T(kIndexerNormEps));
    a[kIkMean][t] = mean;
    a[kIkRstd][t] = rstd;
    for (int e = 0; e < dI; ++e) a[kIk][t * dI + e] = (r[e] - mean) * rstd * g[e] + b[e];
  }
  rope_.apply(a[kIq].data(), positions, n, HI, int64_t{HI} * dI, dI, false, RopeStyle::kHalf);
  rope_.apply(a[kIk].data(), positions, n, 1, dI, dI, false, RopeStyle::kHalf);
}

// One GEMM of the query's heads against the keys (the batch-invariant kernel, so prefill and
// decode score alike), then the weighted ReLU sum over heads in head order.
template <typename T>
void DsaAttention::score_row(const T* q, const T* w, const T* k, int64_t ldk, int64_t count,
                             T* out) const {
  const int HI = c_.index_n_heads, dI = c_.index_head_dim;
  thread_local std::vector<T> u;
  u.resize(int64_t{HI} * count);
  gemm_xwt_rowstable_serial(q, k, static_cast<const T*>(nullptr), u.data(), HI, dI, count, dI,
                            ldk);
  std::fill(out, out + count, T(0));
  for (int h = 0; h < HI; ++h) {
    const T* uh = u.data() + int64_t{h} * count;
    for (int64_t j = 0; j < count; ++j) out[j] += w[h] * std::max(uh[j], T(0));
  }
}

template <typename T>
void DsaAttention::top_keys(const T* score, int64_t count, std::vector<int32_t>& keys) const {
  keys.resize(count);
  std::iota(keys.begin(), keys.end(), 0);
  const int64_t K = c_.index_topk;
  if (count <= K) return;
  std::partial_sort(keys.begin(), keys.begin() + K, keys.end(), [&](int32_t i, int32_t j) {
    return score[i] > score[j] || (score[i] == score[j] && i < j);
  });
  keys.resize(K);
  std::sort(keys.begin(), keys.end());
}

template <typename T>
void DsaAttention::select(const SeqLayout& layout, AttnActs<T>& a) const {
  const int64_t n = layout.n_tokens(), K = c_.index_topk, dI = c_.index_head_dim;
  const int HI = c_.index_n_heads;
  a.selected.assign(n, {});
  tbb::parallel_for(int64_t{0}, n, [&](int64_t t) {
    const int64_t i = layout.positions[t];
    std::vector<int32_t>& keys = a.selected[t];
    if (a.replay != nullptr) {  // the sampler's keys (a row of -1 only: choose afresh)
      for (const int32_t* r = a.replay + t * K; r < a.replay + (t + 1) * K; ++r) {
        if (*r < 0) continue;
        if (*r > i) fail("replayed DSA key ", *r, " lies after the query at position ", i);
        keys.push_back(*r);
      }
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      if (!keys.empty()) return;
    }
    std::vector<T> score(i + 1);
    score_row(a[kIq].data() + t * HI * dI, a[kIw].data() + t * HI,
              a[kIk].data() + (t - i) * dI, dI, i + 1, score.data());
    top_keys(score.data(), i + 1, keys);
  });
}

void DsaAttention::decode_rows(const float* P, const float* h, float* y,
                               const DecodeStep& step) const {
  const int64_t B = static_cast<int64_t>(step.rows.size());
  const int64_t W = cache_width(), lw = mla_.latent_width(), dI = c_.index_head_dim;
  const int64_t K = c_.index_topk;
  const int HI = c_.index_n_heads;
  Buf<float> q(B * c_.num_attention_heads * c_.qk_head_dim()), qan(B * *c_.q_lora_rank);
  mla_.decode_query(P, h, step, W, q.data(), qan.data());
  AttnActs<float> ia;
  ia.buf.resize(kSlots);
  index_project(P, h, qan.data(), step.positions, B, ia, true);
  KeyLists keys(B);
  if (step.selections != nullptr) step.selections->assign(B * K, -1);
  for (int64_t b = 0; b < B; ++b) {
    float* row = step.rows[b]->data() + int64_t{step.positions[b]} * W;
    std::copy_n(ia[kIk].data() + b * dI, dI, row + lw);
  }
  tbb::parallel_for(int64_t{0}, B, [&](int64_t b) {
    const int64_t count = int64_t{step.positions[b]} + 1;
    std::vector<float> score(count);
    score_row(ia[kIq].data() + b * HI * dI, ia[kIw].data() + b * HI,
              step.rows[b]->data() + lw, W, count, score.data());
    top_keys(score.data(), count, keys[b]);
    if (step.selections != nullptr) {
      std::copy(keys[b].begin(), keys[b].end(), step.selections->data() + b * K);
    }
  });
  mla_.decode_attend(P, q.data(), y, step, W, &keys);
}

// KL(p_t || softmax(I_t)) over the support, with p_t the main attention's probabilities summed
// over heads and L1-normalised (a constant: the main model gets no gradient from this loss).
template <typename T>
double DsaAttention::loss(const T* P, T* G, const T* x, const SeqLayout& layout,
                          const AttnActs<T>& a, IndexerSupport support, double weight) const {
  const int64_t n = layout.n_tokens(), dI = c_.index_head_dim;
  const int HI = c_.index_n_heads, H = c_.num_attention_heads, dqk = c_.qk_head_dim();
  const T scale = static_cast<T>(c_.softmax_scale());
  Buf<T> dq(n * HI * dI, T(0)), dk(n * dI, T(0)), dw(n * HI, T(0));
  std::vector<double> per_token(n, 0.0);
  // One task per sequence: it owns its keys' rows of dk.
  tbb::parallel_for(size_t{0}, layout.seq_starts.size() - 1, [&](size_t sq) {
    for (int64_t t = layout.seq_starts[sq]; t < layout.seq_starts[sq + 1]; ++t) {
      const int64_t i = layout.positions[t], first = t - i;
      std::vector<int32_t> all;
      if (support == IndexerSupport::kDense) {
        all.resize(i + 1);
        std::iota(all.begin(), all.end(), 0);
      }
      const std::vector<int32_t>& U = support == IndexerSupport::kDense ? all : a.selected[t];
      const std::vector<int32_t>& sel = a.selected[t];
      const int64_t m = static_cast<int64_t>(U.size());
      std::vector<T> p(m, T(0)), s(m);
      for (int64_t j = 0, k = 0; j < m; ++j) {  // the main attention is zero off its keys
        while (k < int64_t(sel.size()) && sel[k] < U[j]) ++k;
        if (k == int64_t(sel.size()) || sel[k] != U[j]) continue;
        for (int h = 0; h < H; ++h) {
          const T* qh = a[kQ].data() + (t * H + h) * dqk;
          const T* kh = a[kK].data() + ((first + U[j]) * H + h) * dqk;
          T u = 0;
          for (int e = 0; e < dqk; ++e) u += qh[e] * kh[e];
          p[j] += std::exp(u * scale - a[kLse][h * n + t]);
        }
      }
      T mass = 0;
      for (T v : p) mass += v;
      for (T& v : p) v /= mass;
      const T* qt = a[kIq].data() + t * HI * dI;
      const T* wt = a[kIw].data() + t * HI;
      for (int64_t j = 0; j < m; ++j) {
        score_row(qt, wt, a[kIk].data() + (first + U[j]) * dI, dI, 1, &s[j]);
      }
      const T mx = *std::max_element(s.begin(), s.end());
      T z = 0;
      for (T v : s) z += std::exp(v - mx);
      const T logz = mx + std::log(z);
      double kl = 0;
      for (int64_t j = 0; j < m; ++j) {
        const T logq = s[j] - logz;
        if (p[j] > 0) kl += double(p[j]) * (double(std::log(p[j])) - double(logq));
        const T g = static_cast<T>(weight) * (std::exp(logq) - p[j]);  // dKL/dI
        const T* kj = a[kIk].data() + (first + U[j]) * dI;
        for (int h = 0; h < HI; ++h) {
          T u = 0;
          for (int e = 0; e < dI; ++e) u += qt[h * dI + e] * kj[e];
          if (u <= 0) continue;
          dw[t * HI + h] += g * u;
          const T gu = g * wt[h];
          for (int e = 0; e < dI; ++e) {
            dq[(t * HI + h) * dI + e] += gu * kj[e];
            dk[(first + U[j]) * dI + e] += gu * qt[h * dI + e];
          }
        }
      }
      per_token[t] = kl;
    }
  });
  index_backward(P, G, x, layout, a, dq, dk, dw);
  return std::accumulate(per_token.begin(), per_token.end(), 0.0);
}

template <typename T>
void DsaAttention::index_backward(const T* P, T* G, const T* x, const SeqLayout& layout,
                                  const AttnActs<T>& a, Buf<T>& dq, Buf<T>& dk,
                                  Buf<T>& dw) const {
  const int64_t n = layout.n_tokens(), dI = c_.index_head_dim;
  const int HI = c_.index_n_heads;
  for (T& v : dw) v *= static_cast<T>(weight_scale());
  linear_backward(weights_proj_, P, G, x, dw.data(), static_cast<T*>(nullptr), n);
  rope_.apply(dq.data(), layout.positions.data(), n, HI, int64_t{HI} * dI, dI, true,
              RopeStyle::kHalf);
  linear_backward(wq_b_, P, G, a[kQan].data(), dq.data(), static_cast<T*>(nullptr), n);
  rope_.apply(dk.data(), layout.positions.data(), n, 1, dI, dI, true, RopeStyle::kHalf);
  // LayerNorm: dk_raw = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)), dxh = dk * gamma.
  Buf<T> dkraw(n * dI);
  const T* g = P + k_norm_.w;
  for (int64_t t = 0; t < n; ++t) {
    const T mean = a[kIkMean][t], rstd = a[kIkRstd][t];
    T m1 = 0, m2 = 0;
    for (int e = 0; e < dI; ++e) {
      const T xh = (a[kIkRaw][t * dI + e] - mean) * rstd, d = dk[t * dI + e];
      G[k_norm_.w + e] += d * xh;
      G[k_norm_bias_ + e] += d;
      m1 += d * g[e];
      m2 += d * g[e] * xh;
    }
    m1 /= T(dI);
    m2 /= T(dI);
    for (int e = 0; e < dI; ++e) {
      const T xh = (a[kIkRaw][t * dI + e] - mean) * rstd;
      dkraw[t * dI + e] = rstd * (dk[t * dI + e] * g[e] - m1 - xh * m2);
    }
  }
  linear_backward(wk_, P, G, x, dkraw.data(), static_cast<T*>(nullptr), n);
}

}  // namespace

std::unique_ptr<Attention> make_dsa(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope) {
  return std::make_unique<DsaAttention>(t, prefix, c, rope);
}

}  // namespace aha::policy
