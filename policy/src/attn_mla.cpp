// MLA (DeepSeek-V2/V3). Training rebuilds every head's full key and value from the compressed
// latent; the decode cache holds only the normalised latent and the rotated shared key
// (kv_lora_rank + qk_rope_head_dim floats per token; the latent as bf16 under bf16), and decode
// folds W_UK into the query and W_UV into the output ("absorbed"), or rebuilds keys and values
// (the naive oracle). The parts are MlaCore's (attn_mla.h), which DSA shares.
#include "attn_mla.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstring>

#include "aha/core/aligned.h"
#include "aha/core/error.h"
#include "aha/core/gemm_bf16.h"
#include "aha/policy/layers.h"
#include "for_chunks.h"

namespace aha::policy {

namespace {

// A head's few dozen values: whole 64-byte blocks as fixed-size copies (std::copy_n of a run
// whose length is known only at run time is a call to memmove per head and token, ~1.5% of a
// training step of `small`).
template <typename T>
inline void copy_short(const T* src, int64_t n, T* dst) {
  constexpr int64_t kBlock = 64 / sizeof(T);
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) std::memcpy(dst + i, src + i, 64);
  for (; i < n; ++i) dst[i] = src[i];
}

}  // namespace

MlaCore::MlaCore(ParamTable& t, const std::string& prefix, const ModelConfig& c,
                 const RopeTable& rope)
    : c_(c), rope_(rope) {
  const int d = c.hidden_size, H = c.num_attention_heads, dqk = c.qk_head_dim();
  if (c.q_lora_rank) {
    q_a_proj_ = add_linear(t, prefix + ".q_a_proj", d, *c.q_lora_rank);
    q_a_norm_ = add_norm(t, prefix + ".q_a_layernorm.weight", *c.q_lora_rank);
    q_b_proj_ = add_linear(t, prefix + ".q_b_proj", *c.q_lora_rank, H * dqk);
  } else {
    q_proj_ = add_linear(t, prefix + ".q_proj", d, H * dqk);
  }
  kv_a_proj_ =
      add_linear(t, prefix + ".kv_a_proj_with_mqa", d, c.kv_lora_rank + c.qk_rope_head_dim);
  kv_a_norm_ = add_norm(t, prefix + ".kv_a_layernorm.weight", c.kv_lora_rank);
  kv_b_proj_ = add_linear(t, prefix + ".kv_b_proj", c.kv_lora_rank,
                          H * (c.qk_nope_head_dim + c.v_head_dim));
  o_proj_ = add_linear(t, prefix + ".o_proj", H * c.v_head_dim, d);
}

template <typename T>
void MlaCore::project(const T* P, const T* x, const SeqLayout& layout, AttnActs<T>& a) const {
  const int64_t n = layout.n_tokens();
  const int H = c_.num_attention_heads, dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim;
  const int dqk = dn + dr, dv = c_.v_head_dim, rkv = c_.kv_lora_rank;
  const int64_t kv_w = rkv + dr;

  resize_for_overwrite(a[kQ], n * H * dqk);
  if (c_.q_lora_rank) {
    const int rq = *c_.q_lora_rank;
    resize_for_overwrite(a[kQa], n * rq);
    resize_for_overwrite(a[kQaRstd], n);
    resize_for_overwrite(a[kQan], n * rq);
    linear_forward(q_a_proj_, P, x, a[kQa].data(), n, a.rowstable);
    rmsnorm_forward(a[kQa].data(), P + q_a_norm_.w, a[kQan].data(), a[kQaRstd].data(), n, rq,
                    c_.rms_norm_eps);
    linear_forward(q_b_proj_, P, a[kQan].data(), a[kQ].data(), n, a.rowstable);
  } else {
    linear_forward(q_proj_, P, x, a[kQ].data(), n, a.rowstable);
  }
  resize_for_overwrite(a[kKva], n * kv_w);
  resize_for_overwrite(a[kKvRstd], n);
  resize_for_overwrite(a[kKvn], n * rkv);
  linear_forward(kv_a_proj_, P, x, a[kKva].data(), n, a.rowstable);
  rmsnorm_forward(a[kKva].data(), P + kv_a_norm_.w, a[kKvn].data(), a[kKvRstd].data(), n, rkv,
                  c_.rms_norm_eps, kv_w);
  // Both written in full below: no zeroing.
  std::unique_ptr<T[]> kvb(new T[n * H * (dn + dv)]), kpe(new T[n * dr]);
  linear_forward(kv_b_proj_, P, a[kKvn].data(), kvb.get(), n, a.rowstable);
  for_tokens(n, dr, [&](int64_t t) {
    copy_short(a[kKva].data() + t * kv_w + rkv, dr, kpe.get() + t * dr);
  });
  rope_.apply(kpe.get(), layout.positions.data(), n, 1, dr, dr, false);
  rope_.apply(a[kQ].data() + dn, layout.positions.data(), n, H, int64_t{H} * dqk, dqk, false);
  resize_for_overwrite(a[kK], n * H * dqk);
  resize_for_overwrite(a[kV], n * H * dv);
  for_tokens(n, int64_t{H} * (dqk + dv), [&](int64_t t) {
    for (int h = 0; h < H; ++h) {
      const T* src = kvb.get() + (t * H + h) * (dn + dv);
      T* kd = a[kK].data() + (t * H + h) * dqk;
      copy_short(src, dn, kd);
      copy_short(kpe.get() + t * dr, dr, kd + dn);
      copy_short(src + dn, dv, a[kV].data() + (t * H + h) * dv);
    }
  });
}

template <typename T>
void MlaCore::attend(const T* P, T* y, const SeqLayout& layout, AttnActs<T>& a,
                     const KeyLists* keys) const {
  const int64_t n = layout.n_tokens();
  const int H = c_.num_attention_heads, dv = c_.v_head_dim;
  resize_zeroed(a[kO], n * H * dv);
  resize_zeroed(a[kLse], int64_t{H} * n);
  AttnShape s{H, H, c_.qk_head_dim(), dv, c_.softmax_scale()};
  s.selected = keys;
  attention_forward(a[kQ].data(), a[kK].data(), a[kV].data(), a[kO].data(), a[kLse].data(),
                    layout.seq_starts, s);
  linear_forward(o_proj_, P, a[kO].data(), y, n, a.rowstable);
}

template <typename T>
void MlaCore::backward(const T* P, T* G, const T* x, const T* dy, T* dx, const SeqLayout& layout,
                       const AttnActs<T>& a, const KeyLists* keys) const {
  const int64_t n = layout.n_tokens();
  const int H = c_.num_attention_heads, dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim;
  const int dqk = dn + dr, dv = c_.v_head_dim, rkv = c_.kv_lora_rank;
  const int64_t kv_w = rkv + dr;

  // The first products into d_o, dkvn and dqan write them (dx_fresh): no zeroing.
  ScratchBuf<T> d_o(static_cast<size_t>(n * H * dv));
  linear_backward(o_proj_, P, G, a[kO].data(), dy, d_o.data(), n, true);
  // attention_backward writes all of dq, dk and d_v, and the loop below all of dkvb: no zeroing
  // (these four were ~1% of a training step in memset).
  std::unique_ptr<T[]> dq(new T[n * H * dqk]), dk(new T[n * H * dqk]), d_v(new T[n * H * dv]);
  AttnShape s{H, H, dqk, dv, c_.softmax_scale()};
  s.selected = keys;
  attention_backward(d_o.data(), a[kQ].data(), a[kK].data(), a[kV].data(), a[kO].data(),
                     a[kLse].data(), dq.get(), dk.get(), d_v.get(), layout.seq_starts, s);
  rope_.apply(dq.get() + dn, layout.positions.data(), n, H, int64_t{H} * dqk, dqk, true);

  // Split dK/dV back into the kv_b output and the shared rotary key.
  std::unique_ptr<T[]> dkvb(new T[n * H * (dn + dv)]);
  ScratchBuf<T> dkva = zeros<T>(n * kv_w);
  ScratchBuf<T> dkpe = zeros<T>(n * dr);
  for_tokens(n, int64_t{H} * (dqk + dv), [&](int64_t t) {
    for (int h = 0; h < H; ++h) {
      T* dst = dkvb.get() + (t * H + h) * (dn + dv);
      const T* dkh = dk.get() + (t * H + h) * dqk;
      copy_short(dkh, dn, dst);
      copy_short(d_v.get() + (t * H + h) * dv, dv, dst + dn);
      for (int i = 0; i < dr; ++i) dkpe[t * dr + i] += dkh[dn + i];
    }
  });
  rope_.apply(dkpe.data(), layout.positions.data(), n, 1, dr, dr, true);
  for_tokens(n, dr, [&](int64_t t) {
    copy_short(dkpe.data() + t * dr, dr, dkva.data() + t * kv_w + rkv);
  });

  ScratchBuf<T> dkvn(static_cast<size_t>(n * rkv));
  linear_backward(kv_b_proj_, P, G, a[kKvn].data(), dkvb.get(), dkvn.data(), n, true);
  rmsnorm_backward(dkvn.data(), a[kKva].data(), P + kv_a_norm_.w, a[kKvRstd].data(), dkva.data(),
                   G + kv_a_norm_.w, n, rkv, kv_w);
  linear_backward(kv_a_proj_, P, G, x, dkva.data(), dx, n);

  if (c_.q_lora_rank) {
    const int rq = *c_.q_lora_rank;
    ScratchBuf<T> dqan(static_cast<size_t>(n * rq)), dqa = zeros<T>(n * rq);
    linear_backward(q_b_proj_, P, G, a[kQan].data(), dq.get(), dqan.data(), n, true);
    rmsnorm_backward(dqan.data(), a[kQa].data(), P + q_a_norm_.w, a[kQaRstd].data(), dqa.data(),
                     G + q_a_norm_.w, n, rq);
    linear_backward(q_a_proj_, P, G, x, dqa.data(), dx, n);
  } else {
    linear_backward(q_proj_, P, G, x, dq.get(), dx, n);
  }
}

bool MlaCore::packed_latent() const {
  // The kernels widen blocks of 32 values.
  return matmul_precision_setting() == MatmulPrecision::bf16 && c_.kv_lora_rank % 32 == 0;
}

void MlaCore::store_latent(const float* latent, const float* rope_key, float* row) const {
  const int r = c_.kv_lora_rank, dr = c_.qk_rope_head_dim;
  if (packed_latent()) {
    pack_bf16_blocks(latent, r, row);
  } else if (matmul_precision() == MatmulPrecision::bf16) {
    // Under bf16 the trainer multiplies the latent by kv_b_proj as bf16; the absorbed path uses
    // the latent directly, so it caches what the trainer's kernel sees.
    for (int j = 0; j < r; ++j) row[j] = from_bf16(to_bf16(latent[j]));
  } else {
    std::copy_n(latent, r, row);
  }
  std::copy_n(rope_key, dr, row + latent_floats());
}

void MlaCore::load_latent(const float* row, float* out, bool packed) const {
  if (packed) {
    unpack_bf16_blocks(row, c_.kv_lora_rank, out);
  } else {
    std::copy_n(row, c_.kv_lora_rank, out);
  }
}

void MlaCore::latent_rows(const AttnActs<float>& a, int64_t n, float* rows,
                          int64_t row_width) const {
  const int r = c_.kv_lora_rank, dqk = c_.qk_head_dim();
  const int H = c_.num_attention_heads;
  for (int64_t t = 0; t < n; ++t) {
    // The rotated shared key is the tail of every head's key; take head 0's.
    store_latent(a[kKvn].data() + t * r, a[kK].data() + t * H * dqk + c_.qk_nope_head_dim,
                 rows + t * row_width);
  }
}

// W is the width the scores run over, [latent, rope key], however the cache stores the latent.
MlaCore::Dims MlaCore::dims(const DecodeStep& step) const {
  const int dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim;
  return {static_cast<int64_t>(step.rows.size()), c_.num_attention_heads, dn, dr, dn + dr,
          c_.v_head_dim, c_.kv_lora_rank, int64_t{c_.kv_lora_rank} + dr,
          static_cast<float>(c_.softmax_scale())};
}

void MlaCore::decode_query(const float* P, const float* h, const DecodeStep& step,
                           int64_t row_width, float* q, float* qan) const {
  const auto [B, H, dn, dr, dqk, dv, r, W, scale] = dims(step);
  const int32_t* positions = step.positions;
  if (c_.q_lora_rank) {
    const int rq = *c_.q_lora_rank;
    ScratchBuf<float> qa(B * rq), rstd(B);
    linear_stable(q_a_proj_, P, h, qa.data(), B);
    rmsnorm_forward(qa.data(), P + q_a_norm_.w, qan, rstd.data(), B, rq, c_.rms_norm_eps);
    linear_stable(q_b_proj_, P, qan, q, B);
  } else {
    linear_stable(q_proj_, P, h, q, B);
  }
  ScratchBuf<float> kva(B * W), kvn(B * r), rstd(B);
  linear_stable(kv_a_proj_, P, h, kva.data(), B);
  rmsnorm_forward(kva.data(), P + kv_a_norm_.w, kvn.data(), rstd.data(), B, r, c_.rms_norm_eps,
                  W);
  rope_.apply(kva.data() + r, positions, B, 1, W, dr, false);
  rope_.apply(q + dn, positions, B, H, int64_t{H} * dqk, dqk, false);
  for (int64_t b = 0; b < B; ++b) {
    auto& rows = *step.rows[b];
    rows.resize((positions[b] + 1) * row_width);
    store_latent(kvn.data() + b * r, kva.data() + b * W + r,
                 rows.data() + int64_t{positions[b]} * row_width);
  }
}

void MlaCore::decode_attend(const float* P, const float* q, float* y, const DecodeStep& step,
                            int64_t row_width, const KeyLists* keys) const {
  const int64_t B = static_cast<int64_t>(step.rows.size());
  ScratchBuf<float> o(B * c_.num_attention_heads * c_.v_head_dim);
  if (step.absorbed && !(step.prefill && keys == nullptr)) {
    attend_absorbed(P, q, o.data(), step, row_width, keys);
  } else {
    attend_naive(P, q, o.data(), step, row_width, keys);
  }
  linear_stable(o_proj_, P, o.data(), y, B);
}

namespace {

// kv_b's rows [H (dn + dv), r], W_UK_h then W_UV_h per head, as the absorbed decode reads them:
// under bf16 the values the trainer's kernel sees, as bf16 in blocks of 32 where r allows (half
// the bytes a row block reads per layer; the widened values, so the same sums). Where dv allows
// too, each W_UV_h is stored transposed (r rows of dv values), so that its product runs with its
// outputs in the lanes, one multiply-add per term in k order (twice as fast as the dot products
// over r, which end in a reduction of 16 lanes per output); the sums then differ from the float
// path's in their order, not in what they add.
struct AbsorbRows {
  AbsorbRows(const float* w, int64_t heads, int64_t dn, int64_t dv, int64_t r)
      : dn(dn), dv(dv) {
    const bool bf16 = matmul_precision() == MatmulPrecision::bf16;
    const int64_t rows = heads * (dn + dv);
    blocks = bf16 && r % 32 == 0;
    uv_lanes = blocks && dv % 32 == 0;
    ld = blocks ? r / 2 : r;
    data = uv_lanes ? bf16_blocks_tail_transposed(w, heads, dn, dv, r, &copy)
           : blocks ? bf16_blocks(w, rows * r, &copy)
           : bf16   ? bf16_rounded(w, rows * r, &copy)
                    : w;
  }
  const float* row(int64_t i) const { return data + i * ld; }
  // y[n, r] = x[n, dn] W_UK_h (x: q_nope).
  void uk(const float* x, int64_t h, float* y, int64_t n, int64_t r, int64_t ldx,
          int64_t ldy) const {
    const float* w = row(h * (dn + dv));
    if (blocks) {
      gemm_xw_seq_packed(x, w, y, n, dn, r, ld, ldx, ldy);
    } else {
      gemm_xw_seq(x, w, y, n, dn, r, ld, ldx, ldy);
    }
  }
  // y[n, dv] = x[n, r] W_UV_h^T (x: o_lat).
  void uv(const float* x, int64_t h, float* y, int64_t n, int64_t r, int64_t ldx,
          int64_t ldy) const {
    const float* w = row(h * (dn + dv) + dn);
    if (uv_lanes) {
      // Group h's transposed W_UV_h follows its dn rows of W_UK_h: at row(h (dn + dv) + dn),
      // r rows of dv / 2 floats.
      gemm_xw_seq_packed(x, w, y, n, r, dv, dv / 2, ldx, ldy);
    } else if (blocks) {
      gemm_xwt_rowstable_serial_packed(x, w, r, y, n, r, dv, ldx, ld, ldy);
    } else {
      gemm_xwt_rowstable_serial(x, w, static_cast<const float*>(nullptr), y, n, r, dv, ldx, ld,
                                ldy);
    }
  }

  int64_t dn, dv;
  const float* data;
  int64_t ld;
  bool blocks, uv_lanes;
  std::vector<float> copy;
};

}  // namespace

// Per head h: q_lat = W_UK_h^T q_nope, so the score against a cached token is one dot product
// over its whole row [latent, rope key]; softmax; o_lat = the weighted sum of latents;
// o = W_UV_h o_lat. Each step is per row, so the values do not depend on the batch or on the
// task split below.
void MlaCore::attend_absorbed(const float* P, const float* q, float* o, const DecodeStep& step,
                              int64_t row_width, const KeyLists* keys) const {
  const auto [B, H, dn, dr, dqk, dv, r, W, scale] = dims(step);
  const AbsorbRows wkvb(P + kv_b_proj_.w, H, dn, dv, r);
  const float* none = nullptr;
  // Every value is written below, so no zeroing: at a prefill's thousands of rows the zeroing
  // (and its page faults) took ~9% of the prefill.
  const AlignedArray<float> qcat = aligned_array<float>(size_t(B * H * W)),
                            o_lat = aligned_array<float>(size_t(B * H * r));
  // The absorptions are batch GEMMs per head; small batches, and a row block that already has
  // a thread of its own, run them on this thread.
  const bool one_thread = step.in_row_block;
  auto per_head = [&](auto&& fn) {
    if (one_thread || B * int64_t{H} * r * (dn + dv) < (int64_t{1} << 17)) {
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
    wkvb.uk(q + hh * dqk, hh, qcat.get() + hh * W, B, r, int64_t{H} * dqk, int64_t{H} * W);
    for (int64_t b = 0; b < B; ++b) {
      std::copy_n(q + (b * H + hh) * dqk + dn, dr, qcat.get() + (b * H + hh) * W + r);
    }
  });
  // One task per sequence and head group (two groups at small batches to use both cores);
  // each cached row is read once per group. A key list gathers its rows first. A bf16 latent is
  // widened as the products load it.
  const bool packed = packed_latent();
  const int64_t lw = latent_width();
  const int G = (B < 8 && H % 2 == 0) ? 2 : 1, Hg = H / G;
  auto attend = [&](int64_t task) {
    thread_local std::vector<float, LineAllocator<float>> s, gathered;
    const int64_t b = task / G, bh = b * H + (task % G) * Hg;
    int64_t T = step.positions[b] + 1, ld = row_width;
    const float* rows = step.rows[b]->data();
    if (keys != nullptr) {
      const std::vector<int32_t>& kb = (*keys)[b];
      T = static_cast<int64_t>(kb.size());
      gathered.resize(T * lw);
      for (int64_t j = 0; j < T; ++j) {
        std::copy_n(rows + int64_t{kb[j]} * row_width, lw, gathered.data() + j * lw);
      }
      rows = gathered.data();
      ld = lw;
    }
    s.resize(int64_t{Hg} * T);
    float* o_b = o_lat.get() + bh * r;
    if (packed) {
      gemm_xwt_rowstable_serial_packed(qcat.get() + bh * W, rows, r, s.data(), Hg, W, T, W,
                                       ld, T);
      scaled_softmax_rows(s.data(), Hg, T, scale);
      gemm_xw_seq_packed(s.data(), rows, o_b, Hg, T, r, ld);
    } else {
      gemm_xwt_rowstable_serial(qcat.get() + bh * W, rows, none, s.data(), Hg, W, T, W, ld);
      scaled_softmax_rows(s.data(), Hg, T, scale);
      gemm_xw_seq(s.data(), rows, o_b, Hg, T, r, ld);
    }
  };
  if (one_thread) {
    for (int64_t task = 0; task < B * G; ++task) attend(task);
  } else {
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, B * G, 1),
        [&](const tbb::blocked_range<int64_t>& range) {
          for (int64_t task = range.begin(); task < range.end(); ++task) attend(task);
        },
        tbb::simple_partitioner());
  }
  per_head([&](int hh) {
    wkvb.uv(o_lat.get() + hh * r, hh, o + hh * dv, B, r, int64_t{H} * r, int64_t{H} * dv);
  });
}

// Rebuild the attended tokens' keys and values from their latents, once per group of rows that
// share them, then attend: the naive oracle for decode, and a prompt's rows (step.prefill), where
// the prompt's keys serve all its rows and cost far less than the absorbed path's products over
// the latent. A group is a run of rows of one sequence at consecutive positions (a prompt, or
// the part of it in this pass), or one row with its own key list. Each output is the same for
// any grouping: a key's rebuilt row depends only on its latent (row-stable products, one chain
// per output whichever columns share the call), a score is one in-order chain over
// [q_nope, q_pe] . [k_nope, k_pe], and the rows' value products run in order over the keys, the
// ones past a row's own keys adding exact zeros.
//
// A task is one group and one head, and rebuilds that head's keys and values alone: it holds
// T (dn + dv) values where the whole layer's would be H times as many (for DeepSeek-V3's 128
// heads, as much as the latent cache of every layer for the same tokens), and they are read
// back while still in this core's cache.
void MlaCore::attend_naive(const float* P, const float* q, float* o, const DecodeStep& step,
                           int64_t row_width, const KeyLists* keys) const {
  const auto [B, H, dn, dr, dqk, dv, r, W, scale] = dims(step);
  const bool packed = packed_latent();
  const int64_t lat = latent_floats();
  struct Group {
    int64_t b0, b1;           // rows
    std::vector<int64_t> at;  // key positions
    ScratchBuf<float> lat;    // [at.size(), r]: their latents, packed for the products
  };
  std::vector<Group> groups;
  for (int64_t b = 0; b < B; ++b) {
    const bool joins = keys == nullptr && !groups.empty() && step.rows[b] == step.rows[b - 1] &&
                       step.positions[b] == step.positions[b - 1] + 1;
    if (joins) {
      groups.back().b1 = b + 1;
      continue;
    }
    Group g{b, b + 1, {}, {}};
    if (keys != nullptr) g.at.assign((*keys)[b].begin(), (*keys)[b].end());
    groups.push_back(std::move(g));
  }
  tbb::parallel_for(size_t{0}, groups.size(), [&](size_t gi) {
    Group& g = groups[gi];
    if (keys == nullptr) {
      for (int64_t j = 0; j <= step.positions[g.b1 - 1]; ++j) g.at.push_back(j);
    }
    const int64_t T = static_cast<int64_t>(g.at.size());
    const float* rows = step.rows[g.b0]->data();
    g.lat.resize(T * r);
    for (int64_t j = 0; j < T; ++j) {
      load_latent(rows + g.at[j] * row_width, g.lat.data() + j * r, packed);
    }
  });
  const int64_t kBlock = 64;  // query rows per product: bounds the masked work past the diagonal
  const int64_t kTileRows = 16;
  tbb::parallel_for(int64_t{0}, static_cast<int64_t>(groups.size()) * H, [&](int64_t task) {
    const Group& g = groups[task / H];
    const int hh = static_cast<int>(task % H);
    const int64_t T = static_cast<int64_t>(g.at.size());
    const float* rows = step.rows[g.b0]->data();
    ScratchBuf<float> kv(T * (dn + dv)), kp(lanes_panel_floats(dqk, T)), qh, s;
    // With its LoRA adapter.
    linear_stable_cols(kv_b_proj_, P, g.lat.data(), kv.data(), T, hh * (dn + dv), dn + dv);
    // The keys [nope, rope] as the scores' panels, once (each block packed its prefix again
    // before), straight from their two parts where the keys are the cache's first T rows.
    pack_lanes_panels(kv.data(), dn, T, kp.data(), dn + dv, dqk, 0);
    if (keys == nullptr) {
      pack_lanes_panels(rows + lat, dr, T, kp.data(), row_width, dqk, dn);
    } else {
      ScratchBuf<float> rope(T * dr);
      for (int64_t j = 0; j < T; ++j) {
        std::copy_n(rows + g.at[j] * row_width + lat, dr, rope.data() + j * dr);
      }
      pack_lanes_panels(rope.data(), dr, T, kp.data(), dr, dqk, dn);
    }
    // Keys visible to each row: its causal prefix, or its whole list.
    auto seen = [&](int64_t b) { return keys != nullptr ? T : int64_t{step.positions[b]} + 1; };
    for (int64_t i0 = g.b0; i0 < g.b1; i0 += kBlock) {
      const int64_t m = std::min(kBlock, g.b1 - i0);
      const int64_t Tb = seen(i0 + m - 1);
      // The block's queries side by side: the score kernel's broadcasts from rows a whole
      // [H, dqk] row apart ran a fifth slower.
      resize_for_overwrite(qh, m * dqk);
      for (int64_t i = 0; i < m; ++i) {
        copy_short(q + ((i0 + i) * H + hh) * dqk, dqk, qh.data() + i * dqk);
      }
      resize_for_overwrite(s, m * Tb);
      // Each tile of rows over the keys its last row sees: the block's own keys past a row are
      // a quarter of a 256-token prompt's products. A row's sums stop at the same keys (its
      // zeros past them added nothing), so its bits do not depend on the tiling.
      for (int64_t u = 0; u < m; u += kTileRows) {
        const int64_t mu = std::min(kTileRows, m - u), Tu = seen(i0 + u + mu - 1);
        float* su = s.data() + u * Tb;
        // fp32 under bf16 too
        gemm_xwt_lanes_packed(qh.data() + u * dqk, dqk, kp.data(), su, mu, dqk, Tu, Tb);
        // Row i sees seen(first) + i keys, or the whole list (step 0).
        const int64_t first = seen(i0 + u);
        scaled_softmax_rows(su, mu, Tb, first, keys != nullptr ? 0 : 1, scale);
        for (int64_t i = 0; i < mu; ++i) {
          std::fill(su + i * Tb + seen(i0 + u + i), su + i * Tb + Tu, 0.0f);
        }
        gemm_xw_seq(su, kv.data() + dn, o + ((i0 + u) * H + hh) * dv, mu, Tu, dv, dn + dv, Tb,
                    int64_t{H} * dv);
      }
    }
  });
}

#define AHA_MLA_CORE(T)                                                                       \
  template void MlaCore::project(const T*, const T*, const SeqLayout&, AttnActs<T>&) const;   \
  template void MlaCore::attend(const T*, T*, const SeqLayout&, AttnActs<T>&,                 \
                                const KeyLists*) const;                                       \
  template void MlaCore::backward(const T*, T*, const T*, const T*, T*, const SeqLayout&,     \
                                  const AttnActs<T>&, const KeyLists*) const;
AHA_MLA_CORE(float)
AHA_MLA_CORE(double)
#undef AHA_MLA_CORE

namespace {

// Dense MLA: the parts over every causal key; the cache row is the latent alone.
class MlaAttention final : public AttentionImpl<MlaAttention> {
 public:
  MlaAttention(ParamTable& t, const std::string& prefix, const ModelConfig& c,
               const RopeTable& rope)
      : AttentionImpl(c), c_(c), mla_(t, prefix, c, rope) {}

  AttentionKind kind() const override { return AttentionKind::kMla; }
  int64_t cache_width() const override { return mla_.latent_width(); }
  int64_t full_kv_width() const override { return mla_.full_kv_width(); }

  template <typename T>
  void fwd(const T* P, const T* x, T* y, const SeqLayout& layout, AttnActs<T>& a) const {
    a.buf.resize(kMlaSlots);
    mla_.project(P, x, layout, a);
    mla_.attend(P, y, layout, a, static_cast<const KeyLists*>(nullptr));
  }
  template <typename T>
  void bwd(const T* P, T* G, const T* x, const T* dy, T* dx, const SeqLayout& layout,
           const AttnActs<T>& a) const {
    mla_.backward(P, G, x, dy, dx, layout, a, static_cast<const KeyLists*>(nullptr));
  }
  void cache_rows(const AttnActs<float>& a, int64_t n, float* rows) const override {
    mla_.latent_rows(a, n, rows, cache_width());
  }
  void decode_rows(const float* P, const float* h, float* y, const DecodeStep& step) const {
    const ModelConfig& c = c_;
    const int64_t B = static_cast<int64_t>(step.rows.size());
    ScratchBuf<float> q(B * c.num_attention_heads * c.qk_head_dim());
    ScratchBuf<float> qan(c.q_lora_rank ? B * *c.q_lora_rank : 0);
    mla_.decode_query(P, h, step, cache_width(), q.data(), qan.data());
    mla_.decode_attend(P, q.data(), y, step, cache_width(), nullptr);
  }

 private:
  const ModelConfig& c_;
  MlaCore mla_;
};

}  // namespace

std::unique_ptr<Attention> make_mla(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope) {
  return std::make_unique<MlaAttention>(t, prefix, c, rope);
}

}  // namespace aha::policy
