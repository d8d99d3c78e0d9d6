// GQA/MHA attention (Llama/Qwen2), optionally over a sliding window: the training forward and
// backward, the cache rows [keys, values] of every kv head, and the batched one-token decode.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>

#include "aha/core/error.h"
#include "attention_impl.h"

namespace aha::policy {

namespace {

enum Slot { kQ, kK, kV, kO, kLse, kSlots };  // q, k, v after RoPE; o; lse [Hq, n]

class GqaAttention final : public AttentionImpl<GqaAttention> {
 public:
  GqaAttention(ParamTable& t, const std::string& prefix, const ModelConfig& c,
               const RopeTable& rope, int64_t window)
      : AttentionImpl(c), c_(c), rope_(rope), window_(window) {
    const int d = c.hidden_size, hd = c.head_dim;
    q_ = add_linear(t, prefix + ".q_proj", d, c.num_attention_heads * hd, c.attention_bias);
    k_ = add_linear(t, prefix + ".k_proj", d, c.num_key_value_heads * hd, c.attention_bias);
    v_ = add_linear(t, prefix + ".v_proj", d, c.num_key_value_heads * hd, c.attention_bias);
    o_ = add_linear(t, prefix + ".o_proj", c.num_attention_heads * hd, d);
  }

  AttentionKind kind() const override {
    return window_ > 0 ? AttentionKind::kSlidingWindow : AttentionKind::kGqa;
  }
  int64_t cache_width() const override { return 2 * kv_width(); }

  template <typename T>
  void fwd(const T* P, const T* x, T* y, const SeqLayout& layout, AttnActs<T>& a) const {
    const int64_t n = layout.n_tokens();
    const int Hq = c_.num_attention_heads, Hk = c_.num_key_value_heads, hd = c_.head_dim;
    a.buf.resize(kSlots);
    resize_for_overwrite(a[kQ], n * Hq * hd);
    resize_for_overwrite(a[kK], n * Hk * hd);
    resize_for_overwrite(a[kV], n * Hk * hd);
    linear_forward(q_, P, x, a[kQ].data(), n, a.rowstable);
    linear_forward(k_, P, x, a[kK].data(), n, a.rowstable);
    linear_forward(v_, P, x, a[kV].data(), n, a.rowstable);
    rope_.apply(a[kQ].data(), layout.positions.data(), n, Hq, int64_t{Hq} * hd, hd, false);
    rope_.apply(a[kK].data(), layout.positions.data(), n, Hk, int64_t{Hk} * hd, hd, false);
    resize_zeroed(a[kO], n * Hq * hd);
    resize_zeroed(a[kLse], int64_t{Hq} * n);
    attention_forward(a[kQ].data(), a[kK].data(), a[kV].data(), a[kO].data(), a[kLse].data(),
                      layout.seq_starts, shape());
    linear_forward(o_, P, a[kO].data(), y, n, a.rowstable);
  }

  template <typename T>
  void bwd(const T* P, T* G, const T* x, const T* dy, T* dx, const SeqLayout& layout,
           const AttnActs<T>& a) const {
    const int64_t n = layout.n_tokens();
    const int Hq = c_.num_attention_heads, Hk = c_.num_key_value_heads, hd = c_.head_dim;
    ScratchBuf<T> d_o(static_cast<size_t>(n * Hq * hd));  // written by the first product
    linear_backward(o_, P, G, a[kO].data(), dy, d_o.data(), n, true);
    Buf<T> dq(n * Hq * hd), dk(n * Hk * hd), d_v(n * Hk * hd);
    attention_backward(d_o.data(), a[kQ].data(), a[kK].data(), a[kV].data(), a[kO].data(),
                       a[kLse].data(), dq.data(), dk.data(), d_v.data(), layout.seq_starts,
                       shape());
    rope_.apply(dq.data(), layout.positions.data(), n, Hq, int64_t{Hq} * hd, hd, true);
    rope_.apply(dk.data(), layout.positions.data(), n, Hk, int64_t{Hk} * hd, hd, true);
    linear_backward(q_, P, G, x, dq.data(), dx, n);
    linear_backward(k_, P, G, x, dk.data(), dx, n);
    linear_backward(v_, P, G, x, d_v.data(), dx, n);
  }

  void cache_rows(const AttnActs<float>& a, int64_t n, float* rows) const override {
    const int64_t kw = kv_width(), W = cache_width();
    for (int64_t t = 0; t < n; ++t) {
      std::copy_n(a[kK].data() + t * kw, kw, rows + t * W);
      std::copy_n(a[kV].data() + t * kw, kw, rows + t * W + kw);
    }
  }

  void decode_rows(const float* P, const float* h, float* y, const DecodeStep& step) const;

 private:
  int64_t kv_width() const { return int64_t{c_.num_key_value_heads} * c_.head_dim; }
  AttnShape shape() const {
    AttnShape s{c_.num_attention_heads, c_.num_key_value_heads, c_.head_dim, c_.head_dim,
                c_.softmax_scale()};
    s.window = window_;
    return s;
  }

  const ModelConfig& c_;
  const RopeTable& rope_;
  int64_t window_;  // 0: full causal attention
  LinearP q_, k_, v_, o_;
};

void GqaAttention::decode_rows(const float* P, const float* h, float* y,
                               const DecodeStep& step) const {
  const int64_t B = static_cast<int64_t>(step.rows.size());
  const int Hq = c_.num_attention_heads, Hk = c_.num_key_value_heads, hd = c_.head_dim;
  const int64_t kw = kv_width(), W = cache_width();
  const int32_t* positions = step.positions;
  ScratchBuf<float> q(B * Hq * hd), k(B * kw), v(B * kw);
  linear_stable(q_, P, h, q.data(), B);
  linear_stable(k_, P, h, k.data(), B);
  linear_stable(v_, P, h, v.data(), B);
  rope_.apply(q.data(), positions, B, Hq, int64_t{Hq} * hd, hd, false);
  rope_.apply(k.data(), positions, B, Hk, kw, hd, false);
  for (int64_t b = 0; b < B; ++b) {
    auto& rows = *step.rows[b];
    rows.resize((positions[b] + 1) * W);
    float* row = rows.data() + int64_t{positions[b]} * W;
    std::copy_n(k.data() + b * kw, kw, row);
    std::copy_n(v.data() + b * kw, kw, row + kw);
  }
  const float scale = static_cast<float>(c_.softmax_scale());
  const int group = Hq / Hk;
  ScratchBuf<float> o(B * Hq * hd);
  // One task per sequence and kv head: the query heads of its group are the rows of one score
  // GEMM against the cached keys (the last window_ of them), then of one in-order GEMM with the
  // cached values.
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, B * Hk, 1),
      [&](const tbb::blocked_range<int64_t>& range) {
        thread_local std::vector<float> s;
        for (int64_t task = range.begin(); task < range.end(); ++task) {
          const int64_t b = task / Hk;
          const int kh = static_cast<int>(task % Hk);
          const int64_t len = positions[b] + 1, bh = b * Hq + int64_t{kh} * group;
          const int64_t first = window_ > 0 ? std::max<int64_t>(0, len - window_) : 0;
          const int64_t T = len - first;
          const float* rows = step.rows[b]->data() + first * W;
          s.resize(int64_t{group} * T);
          gemm_xwt_rowstable_serial(q.data() + bh * hd, rows + int64_t{kh} * hd,
                                    static_cast<const float*>(nullptr), s.data(), group, hd, T, hd,
                                    W, T);
          scaled_softmax_rows(s.data(), group, T, scale);
          gemm_xw_seq(s.data(), rows + kw + int64_t{kh} * hd, o.data() + bh * hd, group, T, hd, W);
        }
      },
      tbb::simple_partitioner());
  linear_stable(o_, P, o.data(), y, B);
}

}  // namespace

std::unique_ptr<Attention> make_gqa(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope, int64_t window) {
  return std::make_unique<GqaAttention>(t, prefix, c, rope, window);
}

}  // namespace aha::policy
