// MLA's parts (internal to the policy module): the projections, the attention over a given key
// set, its backward, and the two halves of the decode step. MLA (attn_mla.cpp) runs them over
// every causal key; DSA (attn_dsa.cpp) puts its lightning indexer between the projections and
// the attention and passes the keys it selected.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention_impl.h"

namespace aha::policy {

// q, k, v after RoPE [n, H, qk_head_dim] / [n, H, v_head_dim]; the q low-rank path's qa, 1/rms,
// normed; the kv latent (k_pe before RoPE), 1/rms, normed; o; lse [H, n]. A kind built on MLA
// numbers its own slots from kMlaSlots.
enum MlaSlot { kQ, kK, kV, kQa, kQaRstd, kQan, kKva, kKvRstd, kKvn, kO, kLse, kMlaSlots };

// Per packed query token, the ascending in-sequence key positions it sees (AttnShape::selected).
using KeyLists = std::vector<std::vector<int32_t>>;

class MlaCore {
 public:
  MlaCore(ParamTable& t, const std::string& prefix, const ModelConfig& c, const RopeTable& rope);

  // Under `precision: bf16` the cache holds the latent as bf16 (pack_bf16_blocks, tensor.h): the
  // trainer rounds it to bf16 (its kv_b_proj product's operand), so the cache loses nothing, and
  // decode reads half the bytes. The process-wide setting decides, so every thread agrees; a
  // Decoder refuses a precision changed after it sized its caches.
  bool packed_latent() const;
  // Floats of the latent and the rotated shared key as cached: the head of each cache row.
  int64_t latent_width() const { return latent_floats() + c_.qk_rope_head_dim; }
  int64_t latent_floats() const {
    return packed_latent() ? c_.kv_lora_rank / 2 : c_.kv_lora_rank;
  }
  // A cached row's latent as floats, out[kv_lora_rank]. `packed`: packed_latent(), which the
  // caller reads once for a whole step.
  void load_latent(const float* row, float* out, bool packed) const;
  int64_t full_kv_width() const {
    return int64_t{c_.num_attention_heads} * (c_.qk_head_dim() + c_.v_head_dim);
  }

  // Every MLA slot but kO and kLse from x [n, d_model]; a.buf must hold kMlaSlots or more.
  template <typename T>
  void project(const T* P, const T* x, const SeqLayout& layout, AttnActs<T>& a) const;
  // y = o_proj(attention of the projected q over k, v restricted to keys; nullptr: causal).
  template <typename T>
  void attend(const T* P, T* y, const SeqLayout& layout, AttnActs<T>& a,
              const KeyLists* keys) const;
  // The backward of project + attend with the same keys.
  template <typename T>
  void backward(const T* P, T* G, const T* x, const T* dy, T* dx, const SeqLayout& layout,
                const AttnActs<T>& a, const KeyLists* keys) const;
  // The latent part of n cache rows, row_width floats apart.
  void latent_rows(const AttnActs<float>& a, int64_t n, float* rows, int64_t row_width) const;

  // Decode, first half: the rotated queries q [B, H, qk_head_dim] and, with a q latent, its
  // normed value qan [B, q_lora_rank] (else untouched) of the new tokens h; each token's latent
  // is written at the head of its new cache row (row_width floats; the caller fills the rest).
  void decode_query(const float* P, const float* h, const DecodeStep& step, int64_t row_width,
                    float* q, float* qan) const;
  // Decode, second half: y [B, d_model] from attention over each sequence's cache rows, all of
  // them or keys[b] (ascending positions).
  void decode_attend(const float* P, const float* q, float* y, const DecodeStep& step,
                     int64_t row_width, const KeyLists* keys) const;

 private:
  // The decode step's sizes: batch, heads, nope/rope/q-k/v head dims, latent rank, latent
  // width, softmax scale.
  struct Dims {
    int64_t B;
    int H, dn, dr, dqk, dv, r;
    int64_t W;
    float scale;
  };
  Dims dims(const DecodeStep& step) const;
  // Writes a token's normed latent and rotated shared key at the head of its cache row.
  void store_latent(const float* latent, const float* rope_key, float* row) const;
  // o [B, H * v_head_dim] from the rotated queries q [B, H, qk_head_dim] and the caches.
  void attend_absorbed(const float* P, const float* q, float* o, const DecodeStep& step,
                       int64_t row_width, const KeyLists* keys) const;
  void attend_naive(const float* P, const float* q, float* o, const DecodeStep& step,
                    int64_t row_width, const KeyLists* keys) const;

  const ModelConfig& c_;
  const RopeTable& rope_;
  LinearP q_proj_;  // used when q_lora_rank is null
  LinearP q_a_proj_, q_b_proj_;
  NormP q_a_norm_;
  LinearP kv_a_proj_;  // [kv_lora_rank + qk_rope_head_dim, d_model]
  NormP kv_a_norm_;
  LinearP kv_b_proj_;  // [n_heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank]
  LinearP o_proj_;
};

}  // namespace aha::policy
