// Prefill and batched one-token decode over per-sequence caches.
#include "aha/rollout/decoder.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

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

// softmax over scores[0..n) in place; returns nothing, probabilities sum to 1.
void softmax_inplace(float* s, int64_t n) {
  float mx = *std::max_element(s, s + n);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
}

}  // namespace

Decoder::Decoder(const policy::Model<float>& model, bool absorbed)
    : model_(model), absorbed_(absorbed) {
  const ModelConfig& c = model.config();
  if (c.is_mla()) {
    row_width_ = c.kv_lora_rank + c.qk_rope_head_dim;
    const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dv = c.v_head_dim;
    const int r = c.kv_lora_rank;
    for (const LayerP& lp : model.layers()) {
      const float* w = model.params().data() + lp.mla_p.kv_b_proj.w;  // [H*(dn+dv), r]
      std::vector<float> t(static_cast<size_t>(H) * r * dn);
      for (int h = 0; h < H; ++h) {
        for (int i = 0; i < dn; ++i) {
          for (int k = 0; k < r; ++k) t[(size_t(h) * r + k) * dn + i] = w[(size_t(h) * (dn + dv) + i) * r + k];
        }
      }
      w_uk_t_.push_back(std::move(t));
    }
  } else {
    row_width_ = 2 * int64_t{c.num_key_value_heads} * c.head_dim;
  }
}

int64_t Decoder::cache_bytes_per_token() const {
  return row_width_ * model_.config().num_hidden_layers * int64_t{sizeof(float)};
}

int64_t Decoder::full_kv_bytes_per_token() const {
  const ModelConfig& c = model_.config();
  int64_t per_layer = c.is_mla() ? int64_t{c.num_attention_heads} * (c.qk_head_dim() + c.v_head_dim)
                                 : row_width_;
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
    policy::rmsnorm_forward(x.data(), P + lp.post_attn_norm.w, la.h2.data(), la.rstd2.data(), n,
                            d, c.rms_norm_eps);
    if (lp.moe) {
      policy::moe_forward(c, lp.moe_p, P, la.h2.data(), y.data(), layout, la.moe);
      if (routing != nullptr) routing->push_back(la.moe.topk);
    } else {
      policy::mlp_forward(lp.mlp_p, P, la.h2.data(), y.data(), n, la.mlp);
    }
    for (int64_t i = 0; i < n * d; ++i) x[i] += y[i];
  }
  Buf<float> h(d), rstd(1);
  policy::rmsnorm_forward(x.data() + (n - 1) * d, P + model_.final_norm().w, h.data(),
                          rstd.data(), 1, d, c.rms_norm_eps);
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
    // q_lat[b, h] = W_UK_h^T q_nope[b, h]: one batch GEMM per head.
    Buf<float> q_lat(B * H * r), qn(B * dn), ql(B * r);
    for (int hh = 0; hh < H; ++hh) {
      for (int64_t b = 0; b < B; ++b) std::copy_n(q.data() + (b * H + hh) * dqk, dn, qn.data() + b * dn);
      gemm_xwt_rowstable(qn.data(), w_uk_t_[l].data() + size_t(hh) * r * dn,
                         static_cast<const float*>(nullptr), ql.data(), B, dn, r);
      for (int64_t b = 0; b < B; ++b) std::copy_n(ql.data() + b * r, r, q_lat.data() + (b * H + hh) * r);
    }
    Buf<float> o_lat(B * H * r);
    tbb::parallel_for(int64_t{0}, B, [&](int64_t b) {
      const int64_t T = positions[b] + 1;
      const float* rows = caches[b]->rows[l].data();
      std::vector<float> s(T);
      for (int hh = 0; hh < H; ++hh) {
        const float* ql_h = q_lat.data() + (b * H + hh) * r;
        const float* qpe = q.data() + (b * H + hh) * dqk + dn;
        for (int64_t j = 0; j < T; ++j) {
          s[j] = scale * (dot_stable(ql_h, rows + j * W, r) + dot_stable(qpe, rows + j * W + r, dr));
        }
        softmax_inplace(s.data(), T);
        float* ol = o_lat.data() + (b * H + hh) * r;
        std::fill(ol, ol + r, 0.0f);
        for (int64_t j = 0; j < T; ++j) {
          const float* cj = rows + j * W;
          for (int k = 0; k < r; ++k) ol[k] += s[j] * cj[k];
        }
      }
    });
    // o[b, h] = W_UV_h o_lat[b, h]
    Buf<float> olh(B * r), oh(B * dv);
    const float* wkvb = P + p.kv_b_proj.w;
    for (int hh = 0; hh < H; ++hh) {
      for (int64_t b = 0; b < B; ++b) std::copy_n(o_lat.data() + (b * H + hh) * r, r, olh.data() + b * r);
      gemm_xwt_rowstable(olh.data(), wkvb + (size_t(hh) * (dn + dv) + dn) * r,
                         static_cast<const float*>(nullptr), oh.data(), B, r, dv);
      for (int64_t b = 0; b < B; ++b) std::copy_n(oh.data() + b * dv, dv, o.data() + (b * H + hh) * dv);
    }
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
        softmax_inplace(s.data(), T);
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
  tbb::parallel_for(int64_t{0}, B, [&](int64_t b) {
    const int64_t T = positions[b] + 1;
    const float* rows = caches[b]->rows[l].data();
    std::vector<float> s(T);
    for (int hh = 0; hh < Hq; ++hh) {
      const int kh = hh / group;
      const float* qh = q.data() + (b * Hq + hh) * hd;
      for (int64_t j = 0; j < T; ++j) s[j] = scale * dot_stable(qh, rows + j * W + kh * hd, hd);
      softmax_inplace(s.data(), T);
      float* oh = o.data() + (b * Hq + hh) * hd;
      std::fill(oh, oh + hd, 0.0f);
      for (int64_t j = 0; j < T; ++j) {
        const float* vj = rows + j * W + kw + kh * hd;
        for (int i = 0; i < hd; ++i) oh[i] += s[j] * vj[i];
      }
    }
  });
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
