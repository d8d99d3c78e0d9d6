// A linear layer with an optional LoRA adapter (internal to the policy module), for the training
// path (gemm_xwt) and the batch-invariant decode path (gemm_xwt_rowstable):
//   y = x W^T + b + s (x A^T) B^T.
// The adapter is never merged into W: the base stays bit-for-bit what was loaded.
#pragma once

#include <cstdint>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/policy/params.h"
#include "aha/policy/seq_layout.h"

namespace aha::policy {

template <typename T>
const T* bias_of(const T* params, const LinearP& p) {
  return p.b == kNoParam ? nullptr : params + p.b;
}

// y += s (x A^T) B^T. rowstable: each row's result depends on that row alone (decode).
template <typename T>
void lora_forward(const LinearP& p, const T* params, const T* x, T* y, int64_t n, bool rowstable) {
  const T* none = nullptr;
  Buf<T> t(n * p.rank), u(rowstable ? n * p.n_out : 0);
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
  gemm_xwt_rowstable(t.data(), params + p.lora_b, none, u.data(), n, p.rank, p.n_out);
  for (int64_t i = 0; i < n * p.n_out; ++i) y[i] += u[i];
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

// dx += dy W (when dx is set), dW += dy^T x, db += sum dy; a frozen W and b get no gradient.
// With an adapter (t = x A^T recomputed rather than kept): dB += s dy^T t,
// dA += s (dy B)^T x, dx += s (dy B) A.
template <typename T>
void linear_backward(const LinearP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                     int64_t n) {
  if (dx != nullptr) gemm_dyw(dy, params + p.w, dx, n, p.n_in, p.n_out);
  if (!p.frozen) {
    gemm_dytx(dy, x, grads + p.w, p.b == kNoParam ? nullptr : grads + p.b, n, p.n_in, p.n_out);
  }
  if (p.lora_a == kNoParam) return;
  const T s = static_cast<T>(p.lora_scale);
  Buf<T> t(n * p.rank), dt(n * p.rank, T(0));
  gemm_xwt(x, params + p.lora_a, static_cast<const T*>(nullptr), t.data(), n, p.n_in, p.rank);
  for (T& v : t) v *= s;
  gemm_dytx(dy, t.data(), grads + p.lora_b, static_cast<T*>(nullptr), n, p.rank, p.n_out);
  gemm_dyw(dy, params + p.lora_b, dt.data(), n, p.rank, p.n_out);
  for (T& v : dt) v *= s;
  gemm_dytx(dt.data(), x, grads + p.lora_a, static_cast<T*>(nullptr), n, p.n_in, p.rank);
  if (dx != nullptr) gemm_dyw(dt.data(), params + p.lora_a, dx, n, p.n_in, p.rank);
}

}  // namespace aha::policy
