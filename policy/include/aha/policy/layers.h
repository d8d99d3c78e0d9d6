// The primitive layers as *_forward / *_backward pairs (llm.c style). Backward functions are
// named after what they produce the gradient of and ACCUMULATE into their outputs (dx, dw), so a
// residual stream or a shared weight just receives several contributions.
// Activations are row-major [n_tokens, dim]. All functions are thread-safe on disjoint outputs
// and parallelise internally with TBB; results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "aha/policy/model_config.h"

namespace aha::policy {

// ---- RMSNorm: y = x / rms(x) * w ----
template <typename T>
void rmsnorm_forward(const T* x, const T* w, T* y, T* rstd, int64_t n_tokens, int dim,
                     double eps, int64_t x_stride = -1);
template <typename T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, T* dw,
                      int64_t n_tokens, int dim, int64_t x_stride = -1);

// ---- Rotary position embedding ----
// Interleaved pairs (x[2i], x[2i+1]) as in DeepSeek's reference, or rotate-half pairs
// (x[i], x[i + dim/2]) as in Llama/Qwen2.
enum class RopeStyle { kInterleaved, kHalf };

// cos/sin tables for positions [0, max_pos) with the config's scaling (linear, YaRN incl. its
// cos/sin mscale, llama3). Immutable after construction; thread-safe.
class RopeTable {
 public:
  RopeTable(const ModelConfig& config, int max_pos);
  int dim() const { return dim_; }
  int max_pos() const { return max_pos_; }
  RopeStyle style() const { return style_; }
  const double* inv_freq() const { return inv_freq_.data(); }
  // Rotates `n_heads` vectors of `dim` values per token, in place; row t is at x + t*row_stride,
  // heads `head_stride` apart. inverse=true applies the transpose (the backward).
  template <typename T>
  void apply(T* x, const int32_t* positions, int64_t n_tokens, int n_heads, int64_t row_stride,
             int64_t head_stride, bool inverse) const;

 private:
  int dim_;
  int max_pos_;
  RopeStyle style_;
  std::vector<double> inv_freq_;  // [dim/2]
  std::vector<float> cos_;        // [max_pos, dim/2]
  std::vector<float> sin_;
};

// ---- SwiGLU activation: a = silu(g) * u, all [n, inter]; backward writes dg and du ----
template <typename T>
void swiglu_forward(const T* g, const T* u, T* a, int64_t n_tokens, int inter);
template <typename T>
void swiglu_backward(const T* da, const T* g, const T* u, T* dg, T* du, int64_t n_tokens,
                     int inter);

// ---- Causal attention over packed sequences ----
// q [n, n_heads, qk_dim], k [n, n_kv_heads, qk_dim], v [n, n_kv_heads, v_dim] (each row of a
// token contiguous), out [n, n_heads, v_dim], lse [n_heads, n] (saved for backward).
// seq_starts has n_seqs + 1 entries; attention never crosses a sequence boundary.
struct AttnShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int qk_dim = 0;
  int v_dim = 0;
  double scale = 1.0;
};
template <typename T>
void attention_forward(const T* q, const T* k, const T* v, T* out, T* lse,
                       const std::vector<int64_t>& seq_starts, const AttnShape& s);
// dq, dk, dv are written (not accumulated): they are fresh buffers in every caller.
template <typename T>
void attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, T* dq, T* dk, T* dv, const std::vector<int64_t>& seq_starts,
                        const AttnShape& s);

// ---- LM head + log-softmax, chunked over tokens so [n, vocab] logits never exist at once ----
// For every token t with targets[t] >= 0: logprob[t] = log softmax(h[t] W^T / temperature)[target]
// and entropy[t] of that distribution (NaN where targets[t] < 0).
// kept ([n_tokens] or nullptr for none): where kept[t] is non-null, the softmax runs over those
// ids only (ascending, containing the target): the keep-sampling-mask of top-k/top-p sampling, so
// that training renormalises over the same set the sampler drew from. lse[t] is then that set's.
// No default: the backward must be given the same sets as the forward, or it differentiates
// another function.
using KeptSets = std::vector<const std::vector<int32_t>*>;
template <typename T>
void logprob_forward(const T* h, const T* w, const int32_t* targets, T* logprob, T* entropy,
                     T* lse, int64_t n_tokens, int dim, int vocab, double temperature,
                     const KeptSets* kept);
// dh += d(sum_t dlogprob[t] * logprob[t] + dentropy[t] * entropy[t]) / dh, dw likewise, where
// entropy[t] is that of the full distribution (as logprob_forward reports it). Either of
// dlogprob and dentropy may be null (no such term).
template <typename T>
void logprob_backward(const T* dlogprob, const T* dentropy, const T* h, const T* w,
                      const int32_t* targets,
                      const T* lse, T* dh, T* dw, int64_t n_tokens, int dim, int vocab,
                      double temperature, const KeptSets* kept);

// Full log-softmax rows for selected tokens (rows [n_rows, vocab]), for distillation and decode.
template <typename T>
void logits_forward(const T* h, const T* w, T* logits, int64_t n_rows, int dim, int vocab);

}  // namespace aha::policy
