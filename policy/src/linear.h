// A linear layer with an optional LoRA adapter (internal to the policy module), for the training
// path (gemm_xwt) and the batch-invariant decode path (gemm_xwt_rowstable):
//   y = x W^T + b + s (x A^T) B^T.
// The adapter is never merged into W: the base stays bit-for-bit what was loaded.
#pragma once

#include <cstdint>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/policy/lora.h"
#include "aha/policy/params.h"
#include "aha/policy/seq_layout.h"

namespace aha::policy {

template <typename T>
const T* bias_of(const T* params, const LinearP& p) {
  return p.b == kNoParam ? nullptr : params + p.b;
}

// The adapter's dropout mask [n, n_in] (lora.h) when a LoraDropoutScope is active for this
// parameter block and the layer has dropout; empty otherwise.
template <typename T>
Buf<T> lora_mask(const LinearP& p, const T* params, int64_t n) {
  uint64_t seed = 0;
  if (p.lora_dropout <= 0 || !lora_dropout_active(params, &seed)) return Buf<T>();
  Buf<T> m(n * p.n_in);
  for (int64_t i = 0; i < n * p.n_in; ++i) {
    m[i] = static_cast<T>(lora_dropout_mask(seed, p.lora_a, uint64_t(i), p.lora_dropout));
  }
  return m;
}

// y += s (x A^T) B^T. rowstable: each row's result depends on that row alone (decode, which never
// drops); it may give output columns [j0, j0 + nj) only (y then [n, nj]). The training path
// applies the dropout of an active scope to x.
template <typename T>
void lora_forward(const LinearP& p, const T* params, const T* x, T* y, int64_t n, bool rowstable,
                  int64_t j0 = 0, int64_t nj = -1) {
  if (lora_off(params)) return;  // the base alone: the KL reference under LoRA
  if (nj < 0) nj = p.n_out;
  AHA_CHECK(rowstable || (j0 == 0 && nj == p.n_out), "column range on the training path");
  const T* none = nullptr;
  Buf<T> t(n * p.rank), u(rowstable ? n * nj : 0);
  Buf<T> xd = rowstable ? Buf<T>() : lora_mask(p, params, n);
  if (!xd.empty()) {
    for (int64_t i = 0; i < n * p.n_in; ++i) xd[i] *= x[i];
    x = xd.data();
  }
  if (rowstable) {
    gemm_xwt_rowstable(x, params + p.lora_a, none, t.data(), n, p.n_in, p.rank);
  } else {
    gemm_xwt(x, params + p.lora_a, none, t.data(), n, p.n_in, p.rank);
  }
  for (T& v : t) v *= static_cast<T>(p.lora_scale);
  if (!rowstable) {
    gemm_xwt(t.data(), params + p.lora_b, none, y, n, p.rank, p.n_out, true);
    return;
  }
  gemm_xwt_rowstable(t.data(), params + p.lora_b + j0 * p.rank, none, u.data(), n, p.rank, nj);
  for (int64_t i = 0; i < n * nj; ++i) y[i] += u[i];
}

// y = x W^T + b (+ the adapter)
template <typename T>
void linear_forward(const LinearP& p, const T* params, const T* x, T* y, int64_t n) {
  gemm_xwt(x, params + p.w, bias_of(params, p), y, n, p.n_in, p.n_out);
  if (p.lora_a != kNoParam) lora_forward(p, params, x, y, n, false);
}

// The same with the batch-invariant GEMM (decode path).
template <typename T>
void linear_stable(const LinearP& p, const T* params, const T* x, T* y, int64_t n) {
  gemm_xwt_rowstable(x, params + p.w, bias_of(params, p), y, n, p.n_in, p.n_out);
  if (p.lora_a != kNoParam) lora_forward(p, params, x, y, n, true);
}

// Output columns [j0, j0 + nj) of linear_stable into y [n, nj], each the bits it has in the
// whole product (one chain per output, whichever columns share the call).
template <typename T>
void linear_stable_cols(const LinearP& p, const T* params, const T* x, T* y, int64_t n, int64_t j0,
                        int64_t nj) {
  const T* b = bias_of(params, p);
  gemm_xwt_rowstable(x, params + p.w + j0 * p.n_in, b == nullptr ? b : b + j0, y, n, p.n_in, nj);
  if (p.lora_a != kNoParam) lora_forward(p, params, x, y, n, true, j0, nj);
}

// Either kernel (attention's projections: the batch-invariant one when a prefill asks for it).
template <typename T>
void linear_forward(const LinearP& p, const T* params, const T* x, T* y, int64_t n,
                    bool rowstable) {
  if (rowstable) {
    linear_stable(p, params, x, y, n);
  } else {
    linear_forward(p, params, x, y, n);
  }
}

// y = x W^T (+ y when accumulate) (+ the adapter), either kernel: the MLP's projections.
template <typename T>
void linear_any(const LinearP& p, const T* params, const T* x, T* y, int64_t n, bool accumulate,
                bool rowstable) {
  if (!rowstable) {
    gemm_xwt(x, params + p.w, bias_of(params, p), y, n, p.n_in, p.n_out, accumulate);
    if (p.lora_a != kNoParam) lora_forward(p, params, x, y, n, false);
    return;
  }
  if (!accumulate) {
    linear_stable(p, params, x, y, n);
    return;
  }
  Buf<T> tmp(n * p.n_out);
  linear_stable(p, params, x, tmp.data(), n);
  for (int64_t i = 0; i < n * p.n_out; ++i) y[i] += tmp[i];
}

// dx += dy W (when dx is set; dx = dy W when dx_fresh: dx's first contribution, not read and
// needing no zeroing), dW += dy^T x, db += sum dy; a frozen W and b get no gradient.
// With an adapter (t = x A^T recomputed rather than kept): dB += s dy^T t,
// dA += s (dy B)^T x, dx += s (dy B) A.
template <typename T>
void linear_backward(const LinearP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                     int64_t n, bool dx_fresh = false) {
  if (dx != nullptr) gemm_dyw(dy, params + p.w, dx, n, p.n_in, p.n_out, !dx_fresh);
  if (!p.frozen) {
    gemm_dytx(dy, x, grads + p.w, p.b == kNoParam ? nullptr : grads + p.b, n, p.n_in, p.n_out);
  }
  if (p.lora_a == kNoParam) return;
  const T s = static_cast<T>(p.lora_scale);
  // With dropout (mask m): the adapter saw x m, so dA takes x m and dx gets (dt A) m.
  const Buf<T> mask = lora_mask(p, params, n);
  Buf<T> xd;
  if (!mask.empty()) {
    xd.resize(n * p.n_in);
    for (int64_t i = 0; i < n * p.n_in; ++i) xd[i] = x[i] * mask[i];
    x = xd.data();
  }
  Buf<T> t(n * p.rank), dt(n * p.rank, T(0));
  gemm_xwt(x, params + p.lora_a, static_cast<const T*>(nullptr), t.data(), n, p.n_in, p.rank);
  for (T& v : t) v *= s;
  gemm_dytx(dy, t.data(), grads + p.lora_b, static_cast<T*>(nullptr), n, p.rank, p.n_out);
  gemm_dyw(dy, params + p.lora_b, dt.data(), n, p.rank, p.n_out);
  for (T& v : dt) v *= s;
  gemm_dytx(dt.data(), x, grads + p.lora_a, static_cast<T*>(nullptr), n, p.n_in, p.rank);
  if (dx == nullptr) return;
  if (mask.empty()) {
    gemm_dyw(dt.data(), params + p.lora_a, dx, n, p.n_in, p.rank);
    return;
  }
  Buf<T> dxa(n * p.n_in, T(0));
  gemm_dyw(dt.data(), params + p.lora_a, dxa.data(), n, p.n_in, p.rank);
  for (int64_t i = 0; i < n * p.n_in; ++i) dx[i] += dxa[i] * mask[i];
}

}  // namespace aha::policy
