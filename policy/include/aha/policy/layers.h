// The primitive layers as *_forward / *_backward pairs (llm.c style). Backward functions are
// named after what they produce the gradient of and ACCUMULATE into their outputs (dx, dw), so a
// residual stream or a shared weight just receives several contributions.
// Activations are row-major [n_tokens, dim]. All functions are thread-safe on disjoint outputs
// and parallelise internally with TBB; results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "aha/policy/model_config.h"
#include "aha/policy/rope.h"

namespace aha::policy {

// ---- RMSNorm: y = x / rms(x) * w ----
template <typename T>
void rmsnorm_forward(const T* x, const T* w, T* y, T* rstd, int64_t n_tokens, int dim,
                     double eps, int64_t x_stride = -1);
template <typename T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, T* dw,
                      int64_t n_tokens, int dim, int64_t x_stride = -1);

// ---- SwiGLU activation: a = silu(g) * u; backward writes dg and du ----
// a and da are [n, inter]; g, u, dg and du have their rows `ld` apart (inter for arrays of their
// own, 2 inter for the halves of one [n, 2 inter] product of gate and up).
template <typename T>
void swiglu_forward(const T* g, const T* u, int64_t ld, T* a, int64_t n_tokens, int inter);
template <typename T>
void swiglu_backward(const T* da, const T* g, const T* u, int64_t ld, T* dg, T* du,
                     int64_t n_tokens, int inter);

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
