// Manifold-constrained hyper-connections (mHC, DeepSeek-V4): the residual is m = hc_mult
// streams per token instead of one. Around each sublayer, weights computed from the streams
// themselves collapse them into the sublayer's input (pre), spread its output back (post) and mix
// the streams with a doubly-stochastic matrix (comb, Sinkhorn-Knopp):
//   u = sum_p pre_p X_p,  X'_q = post_q * F(norm(u)) + sum_p comb[p][q] X_p.
// The model ends with a head collapse (weights like pre) before the final norm. Everything here
// is per token; block.cpp decides where it is applied. Tensor names follow HF's DeepSeek-V4
// (attn_hc/ffn_hc.{fn,base,scale}, model.hc_head.{hc_fn,hc_base,hc_scale}).
#pragma once

#include <cstdint>
#include <string>

#include "aha/policy/model_config.h"
#include "aha/policy/params.h"
#include "aha/policy/seq_layout.h"

namespace aha::policy {

// fn [K, m*d], base [K], scale [3] (a sublayer: K = (m + 2) * m; the head: K = m, scale [1]).
struct HcP {
  size_t fn = kNoParam, base = kNoParam, scale = kNoParam;
  int mult = 0;  // 0: no hyper-connection
  bool head = false;
  bool on() const { return mult > 0; }
};
HcP add_hc(ParamTable& t, const std::string& prefix, const ModelConfig& c);  // prefix.{fn,base,scale}
HcP add_hc_head(ParamTable& t, const ModelConfig& c);                         // model.hc_head.*

template <typename T>
struct HcActs {
  Buf<T> x_in;  // [n, m*d] the streams that came in (backward only)
  Buf<T> y;     // [n, d] the sublayer's output (backward only)
  Buf<T> mix;   // [n, K] rho * fn x: the logits before scale and base
  Buf<T> rho;   // [n] 1 / rms of the flattened streams
  Buf<T> pre;   // [n, m] collapse weights
  Buf<T> post;  // [n, m] expand weights (sublayer only)
  Buf<T> comb;  // [n, m*m] comb[p][q], doubly stochastic (sublayer only)
};

// The copies of the embedding the streams start from: x [n, d] -> X [n, m*d].
template <typename T>
void hc_expand_embedding(const T* x, T* X, int64_t n, int m, int d);

// Computes the weights from the streams X [n, m*d] and collapses them: u [n, d]. keep: store
// X in a.x_in for backward. rowstable: batch-invariant dot products (decode).
template <typename T>
void hc_collapse(const ModelConfig& c, const HcP& p, const T* P, const T* X, T* u, HcActs<T>& a,
                 int64_t n, bool keep, bool rowstable);
// X <- post (x) y + comb^T X, with the weights of the last hc_collapse. keep: store y.
template <typename T>
void hc_expand(const ModelConfig& c, const T* y, T* X, HcActs<T>& a, int64_t n, bool keep);

// Backward of hc_expand: dX holds d X' and becomes the gradient through comb only (the
// residual path); dy [n, d] is written; dpost [n, m] and dcomb [n, m*m] are written.
template <typename T>
void hc_expand_backward(const ModelConfig& c, const HcActs<T>& a, T* dX, T* dy, T* dpost,
                        T* dcomb, int64_t n);
// Backward of hc_collapse given du [n, d] (and, for a sublayer, dpost and dcomb from
// hc_expand_backward; null for the head): adds the gradient w.r.t. X into dX and the parameter
// gradients into G.
template <typename T>
void hc_collapse_backward(const ModelConfig& c, const HcP& p, const T* P, T* G,
                          const HcActs<T>& a, const T* du, const T* dpost, const T* dcomb, T* dX,
                          int64_t n);

// Sinkhorn-Knopp as DeepSeek-V4 runs it: row softmax + eps, a column normalisation, then
// iters - 1 times rows then columns (each x / (sum + eps)). logits and out are [m*m],
// row-major [p][q]. trace, when set, receives the 2 * iters matrices backward needs.
template <typename T>
void sinkhorn_forward(const T* logits, int m, int iters, double eps, T* out, T* trace);
// dlogits = d loss / d logits given dout, from the trace of sinkhorn_forward.
template <typename T>
void sinkhorn_backward(const T* trace, const T* dout, int m, int iters, double eps, T* dlogits);

}  // namespace aha::policy
