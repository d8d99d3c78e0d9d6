// Prefill and batched one-token decode over per-sequence caches.
#include "aha/rollout/decoder.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "aha/core/error.h"
#include "aha/core/tensor.h"

namespace aha::rollout {

using policy::Buf;
using policy::LayerP;
using policy::ModelConfig;

namespace {

const float* bias_of(const float* params, const policy::LinearP& p) {
  return p.b == policy::kNoParam ? nullptr : params + p.b;
}

void linear_stable(const policy::LinearP& p, const float* params, const float* x, float* y,
                   int64_t n) {
  gemm_xwt_rowstable(x, params + p.w, bias_of(params, p), y, n, p.n_in, p.n_out);
}

typedef float V16 __attribute__((vector_size(64)));

// exp(x) for x <= 0 (scores minus their maximum), 16 at a time: 2^n * p(f) with a degree-6
// polynomial on [-ln2/2, ln2/2]; relative error ~2e-7. x is clamped at -87 (exp ~ 1.6e-38).
inline V16 exp_nonpos(V16 x) {
  const V16 floor_x = V16{} - 87.0f, shifter = V16{} + 12582912.0f;  // 1.5 * 2^23
  x = x < floor_x ? floor_x : x;
  const V16 n = (x * 1.44269504088896341f + shifter) - shifter;  // round to nearest
  V16 f = x - n * 0.693359375f;
  f = f - n * -2.12194440e-4f;
  V16 p = f * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * f + 8.3334519073e-3f;
  p = p * f + 4.1665795894e-2f;
  p = p * f + 1.6666665459e-1f;
  p = p * f + 5.0000001201e-1f;
  p = p * f * f + f + 1.0f;
  typedef int32_t I16 __attribute__((vector_size(64)));
  const I16 e = (__builtin_convertvector(n, I16) + 127) << 23;
  V16 scale;
  __builtin_memcpy(&scale, &e, sizeof(e));
  return p * scale;
}

// Row-wise softmax of s [n_rows, n] in place after multiplying by `scale`. The same operations
// for a row whatever the other rows, so it keeps the decode batch invariant.
void scaled_softmax_rows(float* s, int64_t n_rows, int64_t n, float scale) {
  for (int64_t i = 0; i < n_rows; ++i) {
    float* r = s + i * n;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, r[j] *= scale);
    V16 acc = {};
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
      V16 v;
      __builtin_memcpy(&v, r + j, sizeof(v));
      v = exp_nonpos(v - mx);
      __builtin_memcpy(r + j, &v, sizeof(v));
      acc += v;
    }
    float sum = 0;
    for (int k = 0; k < 16; ++k) sum += acc[k];
    for (; j < n; ++j) {
      V16 v = {};
      v[0] = r[j] - mx;
      sum += (r[j] = exp_nonpos(v)[0]);
    }
    const float inv = 1.0f / sum;
    for (int64_t k = 0; k < n; ++k) r[k] *= inv;
  }
}

}  // namespace

Decoder::Decoder(const policy::Model<float>& model, bool absorbed)
    : model_(model), absorbed_(absorbed) {
  const ModelConfig& c = model.config();
  if (c.is_mla()) {
    row_width_ = c.kv_lora_rank + c.qk_rope_head_dim;
  } else {
    row_width_ = 2 * int64_t{c.num_key_value_heads} * c.head_dim;
  }
}

int64_t Decoder::cache_bytes_per_token() const {
  return row_width_ * model_.config().num_hidden_layers * int64_t{sizeof(float)};
}

int64_t Decoder::full_kv_bytes_per_token() const {
  const ModelConfig& c = model_.config();
  int64_t per_layer =
      c.is_mla() ? int64_t{c.num_attention_heads} * (c.qk_head_dim() + c.v_head_dim) : row_width_;
  return per_layer * c.num_hidden_layers * int64_t{sizeof(float)};
}

void Decoder::prefill(const std::vector<int32_t>& prompt, SeqCache& cache,
                      std::vector<float>& logits, Routing* routing) const {
  const ModelConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(prompt.size());
  const int d = c.hidden_size;
  const float* P = model_.params().data();
  AHA_CHECK(n > 0, "empty prompt");
  policy::SeqLayout layout;
  layout.seq_starts = {0, n};
  for (int64_t t = 0; t < n; ++t) layout.positions.push_back(static_cast<int32_t>(t));
  Buf<float> x(n * d), y(n * d);
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(P + model_.embed_offset() + int64_t{prompt[t]} * d, d, x.data() + t * d);
  }
  cache.rows.assign(c.num_hidden_layers, {});
  cache.len = n;
  if (routing != nullptr) routing->clear();
  policy::LayerActs<float> la;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerP& lp = model_.layers()[l];
    la.h1.resize(n * d);
    la.rstd1.resize(n);
    policy::rmsnorm_forward(x.data(), P + lp.input_norm.w, la.h1.data(), la.rstd1.data(), n, d,
                            c.rms_norm_eps);
    auto& rows = cache.rows[l];
    rows.resize(n * row_width_);
    if (lp.mla) {
      policy::mla_forward(c, lp.mla_p, model_.rope(), P, la.h1.data(), y.data(), layout, la.mla);
      const int r = c.kv_lora_rank, dr = c.qk_rope_head_dim, dqk = c.qk_head_dim();
      const int H = c.num_attention_heads;
      for (int64_t t = 0; t < n; ++t) {
        std::copy_n(la.mla.kvn.data() + t * r, r, rows.data() + t * row_width_);
        // The rotated shared key is the tail of every head's key; take head 0's.
        std::copy_n(la.mla.k.data() + t * H * dqk + c.qk_nope_head_dim, dr,
                    rows.data() + t * row_width_ + r);
      }
    } else {
      policy::gqa_forward(c, lp.gqa_p, model_.rope(), P, la.h1.data(), y.data(), layout, la.gqa);
      const int64_t kw = int64_t{c.num_key_value_heads} * c.head_dim;
      for (int64_t t = 0; t < n; ++t) {
        std::copy_n(la.gqa.k.data() + t * kw, kw, rows.data() + t * row_width_);
        std::copy_n(la.gqa.v.data() + t * kw, kw, rows.data() + t * row_width_ + kw);
      }
    }
    for (int64_t i = 0; i < n * d; ++i) x[i] += y[i];
    la.h2.resize(n * d);
    la.rstd2.resize(n);
    policy::rmsnorm_forward(x.data(), P + lp.post_attn_norm.w, la.h2.data(), la.rstd2.data(), n, d,
                            c.rms_norm_eps);
    if (lp.moe) {
      policy::moe_forward(c, lp.moe_p, P, la.h2.data(), y.data(), layout, la.moe, nullptr, false);
      if (routing != nullptr) routing->push_back(la.moe.topk);
    } else {
      policy::mlp_forward(lp.mlp_p, P, la.h2.data(), y.data(), n, la.mlp);
    }
    for (int64_t i = 0; i < n * d; ++i) x[i] += y[i];
  }
  Buf<float> h(d), rstd(1);
  policy::rmsnorm_forward(x.data() + (n - 1) * d, P + model_.final_norm().w, h.data(), rstd.data(),
                          1, d, c.rms_norm_eps);
  logits.resize(c.vocab_size);
  gemm_xwt_rowstable(h.data(), P + model_.lm_head_offset(), static_cast<const float*>(nullptr),
                     logits.data(), 1, d, c.vocab_size);
}

void Decoder::mla_decode(int l, const float* h, float* y, const std::vector<SeqCache*>& caches,
                         const std::vector<int32_t>& positions) const {
  const ModelConfig& c = model_.config();
  const policy::MlaP& p = model_.layers()[l].mla_p;
  const float* P = model_.params().data();
  const int64_t B = static_cast<int64_t>(caches.size());
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
  const int dqk = dn + dr, dv = c.v_head_dim, r = c.kv_lora_rank;
  const int64_t W = row_width_;
  Buf<float> q(B * H * dqk);
  if (c.q_lora_rank) {
    const int rq = *c.q_lora_rank;
    Buf<float> qa(B * rq), qan(B * rq), rstd(B);
    linear_stable(p.q_a_proj, P, h, qa.data(), B);
    policy::rmsnorm_forward(qa.data(), P + p.q_a_norm.w, qan.data(), rstd.data(), B, rq,
                            c.rms_norm_eps);
    linear_stable(p.q_b_proj, P, qan.data(), q.data(), B);
  } else {
    linear_stable(p.q_proj, P, h, q.data(), B);
  }
  Buf<float> kva(B * W), kvn(B * r), rstd(B);
  linear_stable(p.kv_a_proj, P, h, kva.data(), B);
  policy::rmsnorm_forward(kva.data(), P + p.kv_a_norm.w, kvn.data(), rstd.data(), B, r,
                          c.rms_norm_eps, W);
  model_.rope().apply(kva.data() + r, positions.data(), B, 1, W, dr, false);
  model_.rope().apply(q.data() + dn, positions.data(), B, H, int64_t{H} * dqk, dqk, false);
  for (int64_t b = 0; b < B; ++b) {
    auto& rows = caches[b]->rows[l];
    rows.resize((positions[b] + 1) * W);
    float* row = rows.data() + int64_t{positions[b]} * W;
    std::copy_n(kvn.data() + b * r, r, row);
    std::copy_n(kva.data() + b * W + r, dr, row + r);
  }
  const float scale = static_cast<float>(c.softmax_scale());
  Buf<float> o(B * H * dv);
  if (absorbed_) {
    // Per head h: q_lat = W_UK_h^T q_nope, so the score against a cached token is one dot
    // product over its whole row [latent, rope key]; softmax; o_lat = the weighted sum of
    // latents; o = W_UV_h o_lat. Each step is per row, so the values do not depend on the batch
    // or on the task split below.
    const float* wkvb = P + p.kv_b_proj.w;  // [H * (dn + dv), r]: W_UK_h then W_UV_h per head
    const float* none = nullptr;
    Buf<float> qcat(B * H * W), o_lat(B * H * r);
    // The absorptions are batch GEMMs per head; small batches run them on this thread.
    auto per_head = [&](auto&& fn) {
      if (B * int64_t{H} * r * (dn + dv) < (int64_t{1} << 17)) {
        for (int hh = 0; hh < H; ++hh) fn(hh);
      } else {
        tbb::parallel_for(
            tbb::blocked_range<int>(0, H, 1),
            [&](const tbb::blocked_range<int>& hr) {
              for (int hh = hr.begin(); hh < hr.end(); ++hh) fn(hh);
            },
            tbb::simple_partitioner());
      }
    };
    per_head([&](int hh) {
      gemm_xw_seq(q.data() + hh * dqk, wkvb + size_t(hh) * (dn + dv) * r, qcat.data() + hh * W, B,
                  dn, r, r, int64_t{H} * dqk, int64_t{H} * W);
      for (int64_t b = 0; b < B; ++b) {
        std::copy_n(q.data() + (b * H + hh) * dqk + dn, dr, qcat.data() + (b * H + hh) * W + r);
      }
    });
    // One task per sequence and head group (two groups at small batches to use both cores);
    // each cached row is read once per group.
    const int G = (B < 8 && H % 2 == 0) ? 2 : 1, Hg = H / G;
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, B * G, 1),
        [&](const tbb::blocked_range<int64_t>& range) {
          thread_local std::vector<float> s;
          for (int64_t task = range.begin(); task < range.end(); ++task) {
            const int64_t b = task / G, bh = b * H + (task % G) * Hg;
            const int64_t T = positions[b] + 1;
            const float* rows = caches[b]->rows[l].data();
            s.resize(int64_t{Hg} * T);
            gemm_xwt_rowstable_serial(qcat.data() + bh * W, rows, none, s.data(), Hg, W, T);
            scaled_softmax_rows(s.data(), Hg, T, scale);
            gemm_xw_seq(s.data(), rows, o_lat.data() + bh * r, Hg, T, r, W);
          }
        },
        tbb::simple_partitioner());
    per_head([&](int hh) {
      gemm_xwt_rowstable_serial(o_lat.data() + hh * r, wkvb + (size_t(hh) * (dn + dv) + dn) * r,
                                none, o.data() + hh * dv, B, r, dv, int64_t{H} * r, r,
                                int64_t{H} * dv);
    });
  } else {
    // Naive: rebuild every cached token's keys and values from its latent, then attend.
    tbb::parallel_for(int64_t{0}, B, [&](int64_t b) {
      const int64_t T = positions[b] + 1;
      const float* rows = caches[b]->rows[l].data();
      Buf<float> lat(T * r), kvb(T * H * (dn + dv));
      for (int64_t j = 0; j < T; ++j) std::copy_n(rows + j * W, r, lat.data() + j * r);
      gemm_xwt_rowstable(lat.data(), P + p.kv_b_proj.w, static_cast<const float*>(nullptr),
                         kvb.data(), T, r, int64_t{H} * (dn + dv));
      std::vector<float> s(T);
      for (int hh = 0; hh < H; ++hh) {
        const float* qh = q.data() + (b * H + hh) * dqk;
        for (int64_t j = 0; j < T; ++j) {
          const float* kj = kvb.data() + (j * H + hh) * (dn + dv);
          s[j] = scale * (dot_stable(qh, kj, dn) + dot_stable(qh + dn, rows + j * W + r, dr));
        }
        scaled_softmax_rows(s.data(), 1, T, 1.0f);
        float* oh = o.data() + (b * H + hh) * dv;
        std::fill(oh, oh + dv, 0.0f);
        for (int64_t j = 0; j < T; ++j) {
          const float* vj = kvb.data() + (j * H + hh) * (dn + dv) + dn;
          for (int k = 0; k < dv; ++k) oh[k] += s[j] * vj[k];
        }
      }
    });
  }
  linear_stable(p.o_proj, P, o.data(), y, B);
}

void Decoder::gqa_decode(int l, const float* h, float* y, const std::vector<SeqCache*>& caches,
                         const std::vector<int32_t>& positions) const {
  const ModelConfig& c = model_.config();
  const policy::GqaP& p = model_.layers()[l].gqa_p;
  const float* P = model_.params().data();
  const int64_t B = static_cast<int64_t>(caches.size());
  const int Hq = c.num_attention_heads, Hk = c.num_key_value_heads, hd = c.head_dim;
  const int64_t kw = int64_t{Hk} * hd, W = row_width_;
  Buf<float> q(B * Hq * hd), k(B * kw), v(B * kw);
  linear_stable(p.q_proj, P, h, q.data(), B);
  linear_stable(p.k_proj, P, h, k.data(), B);
  linear_stable(p.v_proj, P, h, v.data(), B);
  model_.rope().apply(q.data(), positions.data(), B, Hq, int64_t{Hq} * hd, hd, false);
  model_.rope().apply(k.data(), positions.data(), B, Hk, kw, hd, false);
  for (int64_t b = 0; b < B; ++b) {
    auto& rows = caches[b]->rows[l];
    rows.resize((positions[b] + 1) * W);
    float* row = rows.data() + int64_t{positions[b]} * W;
    std::copy_n(k.data() + b * kw, kw, row);
    std::copy_n(v.data() + b * kw, kw, row + kw);
  }
  const float scale = static_cast<float>(c.softmax_scale());
  const int group = Hq / Hk;
  Buf<float> o(B * Hq * hd);
  // One task per sequence and kv head: the query heads of its group are the rows of one score
  // GEMM against the cached keys, then of one in-order GEMM with the cached values.
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, B * Hk, 1),
      [&](const tbb::blocked_range<int64_t>& range) {
        thread_local std::vector<float> s;
        for (int64_t task = range.begin(); task < range.end(); ++task) {
          const int64_t b = task / Hk;
          const int kh = static_cast<int>(task % Hk);
          const int64_t T = positions[b] + 1, bh = b * Hq + int64_t{kh} * group;
          const float* rows = caches[b]->rows[l].data();
          s.resize(int64_t{group} * T);
          gemm_xwt_rowstable_serial(q.data() + bh * hd, rows + int64_t{kh} * hd,
                                    static_cast<const float*>(nullptr), s.data(), group, hd, T, hd,
                                    W, T);
          scaled_softmax_rows(s.data(), group, T, scale);
          gemm_xw_seq(s.data(), rows + kw + int64_t{kh} * hd, o.data() + bh * hd, group, T, hd, W);
        }
      },
      tbb::simple_partitioner());
  linear_stable(p.o_proj, P, o.data(), y, B);
}

void Decoder::decode(const std::vector<int32_t>& tokens, const std::vector<SeqCache*>& caches,
                     std::vector<float>& logits, Routing* routing) const {
  const ModelConfig& c = model_.config();
  const int64_t B = static_cast<int64_t>(tokens.size());
  const int d = c.hidden_size;
  const float* P = model_.params().data();
  AHA_CHECK(caches.size() == tokens.size(), "one cache per token");
  std::vector<int32_t> positions(B);
  for (int64_t b = 0; b < B; ++b) {
    positions[b] = static_cast<int32_t>(caches[b]->len);
    if (positions[b] >= model_.rope().max_pos()) fail("sequence exceeds the model's context");
  }
  Buf<float> x(B * d), h(B * d), y(B * d), rstd(B);
  for (int64_t b = 0; b < B; ++b) {
    std::copy_n(P + model_.embed_offset() + int64_t{tokens[b]} * d, d, x.data() + b * d);
  }
  policy::SeqLayout layout;  // B one-token "sequences" for the MoE balance statistics
  for (int64_t b = 0; b <= B; ++b) layout.seq_starts.push_back(b);
  layout.positions = positions;
  if (routing != nullptr) routing->clear();
  policy::MoeActs<float> moe;
  policy::MlpActs<float> mlp;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerP& lp = model_.layers()[l];
    policy::rmsnorm_forward(x.data(), P + lp.input_norm.w, h.data(), rstd.data(), B, d,
                            c.rms_norm_eps);
    if (lp.mla) {
      mla_decode(l, h.data(), y.data(), caches, positions);
    } else {
      gqa_decode(l, h.data(), y.data(), caches, positions);
    }
    for (int64_t i = 0; i < B * d; ++i) x[i] += y[i];
    policy::rmsnorm_forward(x.data(), P + lp.post_attn_norm.w, h.data(), rstd.data(), B, d,
                            c.rms_norm_eps);
    if (lp.moe) {
      policy::moe_forward(c, lp.moe_p, P, h.data(), y.data(), layout, moe, nullptr, true);
      if (routing != nullptr) routing->push_back(moe.topk);
    } else {
      policy::mlp_forward(lp.mlp_p, P, h.data(), y.data(), B, mlp, false, true);
    }
    for (int64_t i = 0; i < B * d; ++i) x[i] += y[i];
  }
  for (int64_t b = 0; b < B; ++b) caches[b]->len += 1;
  policy::rmsnorm_forward(x.data(), P + model_.final_norm().w, h.data(), rstd.data(), B, d,
                          c.rms_norm_eps);
  logits.resize(B * c.vocab_size);
  gemm_xwt_rowstable(h.data(), P + model_.lm_head_offset(), static_cast<const float*>(nullptr),
                     logits.data(), B, d, c.vocab_size);
}

}  // namespace aha::rollout
