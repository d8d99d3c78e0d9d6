// Attention blocks on the training/scoring path: MLA with full keys and values rebuilt from the
// compressed latent, and GQA for the dense students. Forward and backward.
#include <algorithm>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/policy/blocks.h"

namespace aha::policy {

namespace {

template <typename T>
const T* bias_of(const T* params, const LinearP& p) {
  return p.b == kNoParam ? nullptr : params + p.b;
}

// y = x W^T + b
template <typename T>
void linear_forward(const LinearP& p, const T* params, const T* x, T* y, int64_t n) {
  gemm_xwt(x, params + p.w, bias_of(params, p), y, n, p.n_in, p.n_out);
}

// dx += dy W, dW += dy^T x, db += sum dy
template <typename T>
void linear_backward(const LinearP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                     int64_t n) {
  if (dx != nullptr) gemm_dyw(dy, params + p.w, dx, n, p.n_in, p.n_out);
  gemm_dytx(dy, x, grads + p.w, p.b == kNoParam ? nullptr : grads + p.b, n, p.n_in, p.n_out);
}

template <typename T>
void resize_zero(Buf<T>& b, size_t n) {
  b.assign(n, T(0));
}

}  // namespace

MlaP add_mla(ParamTable& t, const std::string& prefix, const ModelConfig& c) {
  MlaP p;
  const int d = c.hidden_size, H = c.num_attention_heads, dqk = c.qk_head_dim();
  if (c.q_lora_rank) {
    p.q_a_proj = add_linear(t, prefix + ".q_a_proj", d, *c.q_lora_rank);
    p.q_a_norm = add_norm(t, prefix + ".q_a_layernorm.weight", *c.q_lora_rank);
    p.q_b_proj = add_linear(t, prefix + ".q_b_proj", *c.q_lora_rank, H * dqk);
  } else {
    p.q_proj = add_linear(t, prefix + ".q_proj", d, H * dqk);
  }
  p.kv_a_proj = add_linear(t, prefix + ".kv_a_proj_with_mqa", d, c.kv_lora_rank + c.qk_rope_head_dim);
  p.kv_a_norm = add_norm(t, prefix + ".kv_a_layernorm.weight", c.kv_lora_rank);
  p.kv_b_proj =
      add_linear(t, prefix + ".kv_b_proj", c.kv_lora_rank, H * (c.qk_nope_head_dim + c.v_head_dim));
  p.o_proj = add_linear(t, prefix + ".o_proj", H * c.v_head_dim, d);
  return p;
}

template <typename T>
void mla_forward(const ModelConfig& c, const MlaP& p, const RopeTable& rope, const T* params,
                 const T* x, T* y, const SeqLayout& layout, MlaActs<T>& a) {
  const int64_t n = layout.n_tokens();
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
  const int dqk = dn + dr, dv = c.v_head_dim, rkv = c.kv_lora_rank;
  const int64_t kv_w = rkv + dr;

  a.q.resize(n * H * dqk);
  if (c.q_lora_rank) {
    const int rq = *c.q_lora_rank;
    a.qa.resize(n * rq);
    a.qa_rstd.resize(n);
    a.qan.resize(n * rq);
    linear_forward(p.q_a_proj, params, x, a.qa.data(), n);
    rmsnorm_forward(a.qa.data(), params + p.q_a_norm.w, a.qan.data(), a.qa_rstd.data(), n, rq,
                    c.rms_norm_eps);
    linear_forward(p.q_b_proj, params, a.qan.data(), a.q.data(), n);
  } else {
    linear_forward(p.q_proj, params, x, a.q.data(), n);
  }
  a.kva.resize(n * kv_w);
  a.kv_rstd.resize(n);
  a.kvn.resize(n * rkv);
  linear_forward(p.kv_a_proj, params, x, a.kva.data(), n);
  rmsnorm_forward(a.kva.data(), params + p.kv_a_norm.w, a.kvn.data(), a.kv_rstd.data(), n, rkv,
                  c.rms_norm_eps, kv_w);
  Buf<T> kvb(n * H * (dn + dv));
  linear_forward(p.kv_b_proj, params, a.kvn.data(), kvb.data(), n);
  Buf<T> kpe(n * dr);
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(a.kva.data() + t * kv_w + rkv, dr, kpe.data() + t * dr);
  }
  rope.apply(kpe.data(), layout.positions.data(), n, 1, dr, dr, false);
  rope.apply(a.q.data() + dn, layout.positions.data(), n, H, int64_t{H} * dqk, dqk, false);
  a.k.resize(n * H * dqk);
  a.v.resize(n * H * dv);
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < H; ++h) {
      const T* src = kvb.data() + (t * H + h) * (dn + dv);
      T* kd = a.k.data() + (t * H + h) * dqk;
      std::copy_n(src, dn, kd);
      std::copy_n(kpe.data() + t * dr, dr, kd + dn);
      std::copy_n(src + dn, dv, a.v.data() + (t * H + h) * dv);
    }
  }
  a.o.resize(n * H * dv);
  a.lse.resize(int64_t{H} * n);
  AttnShape s{H, H, dqk, dv, c.softmax_scale()};
  attention_forward(a.q.data(), a.k.data(), a.v.data(), a.o.data(), a.lse.data(),
                    layout.seq_starts, s);
  linear_forward(p.o_proj, params, a.o.data(), y, n);
}

template <typename T>
void mla_backward(const ModelConfig& c, const MlaP& p, const RopeTable& rope, const T* params,
                  T* grads, const T* x, const T* dy, T* dx, const SeqLayout& layout,
                  const MlaActs<T>& a) {
  const int64_t n = layout.n_tokens();
  const int H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim;
  const int dqk = dn + dr, dv = c.v_head_dim, rkv = c.kv_lora_rank;
  const int64_t kv_w = rkv + dr;

  Buf<T> d_o;
  resize_zero(d_o, n * H * dv);
  linear_backward(p.o_proj, params, grads, a.o.data(), dy, d_o.data(), n);
  Buf<T> dq(n * H * dqk), dk(n * H * dqk), d_v(n * H * dv);
  AttnShape s{H, H, dqk, dv, c.softmax_scale()};
  attention_backward(d_o.data(), a.q.data(), a.k.data(), a.v.data(), a.o.data(), a.lse.data(),
                     dq.data(), dk.data(), d_v.data(), layout.seq_starts, s);
  rope.apply(dq.data() + dn, layout.positions.data(), n, H, int64_t{H} * dqk, dqk, true);

  // Split dK/dV back into the kv_b output and the shared rotary key.
  Buf<T> dkvb(n * H * (dn + dv));
  Buf<T> dkva;
  resize_zero(dkva, n * kv_w);
  Buf<T> dkpe;
  resize_zero(dkpe, n * dr);
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < H; ++h) {
      T* dst = dkvb.data() + (t * H + h) * (dn + dv);
      const T* dkh = dk.data() + (t * H + h) * dqk;
      std::copy_n(dkh, dn, dst);
      std::copy_n(d_v.data() + (t * H + h) * dv, dv, dst + dn);
      for (int i = 0; i < dr; ++i) dkpe[t * dr + i] += dkh[dn + i];
    }
  }
  rope.apply(dkpe.data(), layout.positions.data(), n, 1, dr, dr, true);
  for (int64_t t = 0; t < n; ++t) std::copy_n(dkpe.data() + t * dr, dr, dkva.data() + t * kv_w + rkv);

  Buf<T> dkvn;
  resize_zero(dkvn, n * rkv);
  linear_backward(p.kv_b_proj, params, grads, a.kvn.data(), dkvb.data(), dkvn.data(), n);
  rmsnorm_backward(dkvn.data(), a.kva.data(), params + p.kv_a_norm.w, a.kv_rstd.data(),
                   dkva.data(), grads + p.kv_a_norm.w, n, rkv, kv_w);
  linear_backward(p.kv_a_proj, params, grads, x, dkva.data(), dx, n);

  if (c.q_lora_rank) {
    const int rq = *c.q_lora_rank;
    Buf<T> dqan, dqa;
    resize_zero(dqan, n * rq);
    resize_zero(dqa, n * rq);
    linear_backward(p.q_b_proj, params, grads, a.qan.data(), dq.data(), dqan.data(), n);
    rmsnorm_backward(dqan.data(), a.qa.data(), params + p.q_a_norm.w, a.qa_rstd.data(),
                     dqa.data(), grads + p.q_a_norm.w, n, rq);
    linear_backward(p.q_a_proj, params, grads, x, dqa.data(), dx, n);
  } else {
    linear_backward(p.q_proj, params, grads, x, dq.data(), dx, n);
  }
}

GqaP add_gqa(ParamTable& t, const std::string& prefix, const ModelConfig& c) {
  GqaP p;
  const int d = c.hidden_size, hd = c.head_dim;
  p.q_proj = add_linear(t, prefix + ".q_proj", d, c.num_attention_heads * hd, c.attention_bias);
  p.k_proj = add_linear(t, prefix + ".k_proj", d, c.num_key_value_heads * hd, c.attention_bias);
  p.v_proj = add_linear(t, prefix + ".v_proj", d, c.num_key_value_heads * hd, c.attention_bias);
  p.o_proj = add_linear(t, prefix + ".o_proj", c.num_attention_heads * hd, d);
  return p;
}

template <typename T>
void gqa_forward(const ModelConfig& c, const GqaP& p, const RopeTable& rope, const T* params,
                 const T* x, T* y, const SeqLayout& layout, GqaActs<T>& a) {
  const int64_t n = layout.n_tokens();
  const int Hq = c.num_attention_heads, Hk = c.num_key_value_heads, hd = c.head_dim;
  a.q.resize(n * Hq * hd);
  a.k.resize(n * Hk * hd);
  a.v.resize(n * Hk * hd);
  linear_forward(p.q_proj, params, x, a.q.data(), n);
  linear_forward(p.k_proj, params, x, a.k.data(), n);
  linear_forward(p.v_proj, params, x, a.v.data(), n);
  rope.apply(a.q.data(), layout.positions.data(), n, Hq, int64_t{Hq} * hd, hd, false);
  rope.apply(a.k.data(), layout.positions.data(), n, Hk, int64_t{Hk} * hd, hd, false);
  a.o.resize(n * Hq * hd);
  a.lse.resize(int64_t{Hq} * n);
  AttnShape s{Hq, Hk, hd, hd, c.softmax_scale()};
  attention_forward(a.q.data(), a.k.data(), a.v.data(), a.o.data(), a.lse.data(),
                    layout.seq_starts, s);
  linear_forward(p.o_proj, params, a.o.data(), y, n);
}

template <typename T>
void gqa_backward(const ModelConfig& c, const GqaP& p, const RopeTable& rope, const T* params,
                  T* grads, const T* x, const T* dy, T* dx, const SeqLayout& layout,
                  const GqaActs<T>& a) {
  const int64_t n = layout.n_tokens();
  const int Hq = c.num_attention_heads, Hk = c.num_key_value_heads, hd = c.head_dim;
  Buf<T> d_o;
  resize_zero(d_o, n * Hq * hd);
  linear_backward(p.o_proj, params, grads, a.o.data(), dy, d_o.data(), n);
  Buf<T> dq(n * Hq * hd), dk(n * Hk * hd), d_v(n * Hk * hd);
  AttnShape s{Hq, Hk, hd, hd, c.softmax_scale()};
  attention_backward(d_o.data(), a.q.data(), a.k.data(), a.v.data(), a.o.data(), a.lse.data(),
                     dq.data(), dk.data(), d_v.data(), layout.seq_starts, s);
  rope.apply(dq.data(), layout.positions.data(), n, Hq, int64_t{Hq} * hd, hd, true);
  rope.apply(dk.data(), layout.positions.data(), n, Hk, int64_t{Hk} * hd, hd, true);
  linear_backward(p.q_proj, params, grads, x, dq.data(), dx, n);
  linear_backward(p.k_proj, params, grads, x, dk.data(), dx, n);
  linear_backward(p.v_proj, params, grads, x, d_v.data(), dx, n);
}

#define AHA_INSTANTIATE_ATTN(T)                                                                 \
  template void mla_forward<T>(const ModelConfig&, const MlaP&, const RopeTable&, const T*,     \
                               const T*, T*, const SeqLayout&, MlaActs<T>&);                    \
  template void mla_backward<T>(const ModelConfig&, const MlaP&, const RopeTable&, const T*, T*, \
                                const T*, const T*, T*, const SeqLayout&, const MlaActs<T>&);   \
  template void gqa_forward<T>(const ModelConfig&, const GqaP&, const RopeTable&, const T*,     \
                               const T*, T*, const SeqLayout&, GqaActs<T>&);                    \
  template void gqa_backward<T>(const ModelConfig&, const GqaP&, const RopeTable&, const T*, T*, \
                                const T*, const T*, T*, const SeqLayout&, const GqaActs<T>&);

AHA_INSTANTIATE_ATTN(float)
AHA_INSTANTIATE_ATTN(double)

}  // namespace aha::policy
