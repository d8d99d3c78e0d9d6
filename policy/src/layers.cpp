// RMSNorm, SwiGLU and the chunked LM-head log-softmax, forward and backward.
#include "aha/policy/layers.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/core/fast_exp.h"
#include "for_chunks.h"

namespace aha::policy {

namespace {

constexpr int64_t kRowChunk = 64;

// Rows [t0, t1) of x: each row's sum of squares in double, over kLanes interleaved partial
// sums added in a fixed order at the end, so a row's norm depends on that row alone. A float's
// square is exact in double and the sums carry 29 bits more than the float result, so the order
// of the terms moves the norm only in a rounding of the double, never seen in the float. The
// lanes vectorise within a row (a row per chain waited on the add's latency at every term: 4-5%
// of a 64 x 256 prefill).
template <typename T>
void sums_of_squares(const T* x, int64_t stride, int dim, int64_t t0, int64_t t1, double* ss) {
  constexpr int kLanes = 32;
  for (int64_t t = t0; t < t1; ++t) {
    const T* xr = x + t * stride;
    double part[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= dim; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) part[l] += static_cast<double>(xr[i + l]) * xr[i + l];
    }
    for (int l = 0; i < dim; ++i, ++l) part[l] += static_cast<double>(xr[i]) * xr[i];
    for (int w = kLanes / 2; w > 0; w /= 2) {
      for (int l = 0; l < w; ++l) part[l] += part[l + w];
    }
    ss[t - t0] = part[0];
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RMSNorm

template <typename T>
void rmsnorm_forward(const T* x, const T* w, T* y, T* rstd, int64_t n_tokens, int dim, double eps,
                     int64_t x_stride) {
  if (x_stride < 0) x_stride = dim;
  for_chunks(n_tokens, kRowChunk, [&](int64_t, int64_t t0, int64_t t1) {
    double ss[kRowChunk];
    sums_of_squares(x, x_stride, dim, t0, t1, ss);
    for (int64_t t = t0; t < t1; ++t) {
      const T* xr = x + t * x_stride;
      T* yr = y + t * dim;
      T r = static_cast<T>(1.0 / std::sqrt(ss[t - t0] / dim + eps));
      rstd[t] = r;
      for (int i = 0; i < dim; ++i) yr[i] = xr[i] * r * w[i];
    }
  });
}

template <typename T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, T* dw,
                      int64_t n_tokens, int dim, int64_t x_stride) {
  if (x_stride < 0) x_stride = dim;
  int64_t n_chunks = (n_tokens + kRowChunk - 1) / kRowChunk;
  std::vector<T> partial(static_cast<size_t>(n_chunks) * dim, T(0));
  for_chunks(n_tokens, kRowChunk, [&](int64_t c, int64_t t0, int64_t t1) {
    T* pw = partial.data() + c * dim;
    for (int64_t t = t0; t < t1; ++t) {
      const T* xr = x + t * x_stride;
      const T* dyr = dy + t * dim;
      T* dxr = dx + t * x_stride;
      T r = rstd[t];
      for (int i = 0; i < dim; ++i) pw[i] += dyr[i] * xr[i] * r;
      // sum_i dy_i w_i x_i in kLanes interleaved partial sums, added in a fixed order: the
      // loop vectorises (one running sum is a chain of dependent double adds).
      constexpr int kLanes = 8;
      double part[kLanes] = {};
      int i = 0;
      for (; i + kLanes <= dim; i += kLanes) {
        for (int l = 0; l < kLanes; ++l) {
          part[l] += static_cast<double>(dyr[i + l]) * w[i + l] * xr[i + l];
        }
      }
      for (; i < dim; ++i) part[0] += static_cast<double>(dyr[i]) * w[i] * xr[i];
      double dot = 0;
      for (double p : part) dot += p;
      T k = static_cast<T>(dot / dim) * r * r * r;
      for (int i = 0; i < dim; ++i) dxr[i] += dyr[i] * w[i] * r - xr[i] * k;
    }
  });
  for (int64_t c = 0; c < n_chunks; ++c) {
    for (int i = 0; i < dim; ++i) dw[i] += partial[c * dim + i];
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU

template <typename T>
void swiglu_forward(const T* g, const T* u, int64_t ld, T* a, int64_t n_tokens, int inter) {
  for_chunks(n_tokens, std::max<int64_t>(1, kRowChunk * 256 / inter),
             [&](int64_t, int64_t t0, int64_t t1) {
               const VecExp<T> vexp;  // a local: its bounds stay in registers
               for (int64_t t = t0; t < t1; ++t) {
                 const T* gr = g + t * ld;
                 const T* ur = u + t * ld;
                 T* ar = a + t * inter;
                 for (int i = 0; i < inter; ++i) ar[i] = gr[i] / (T(1) + vexp(-gr[i])) * ur[i];
               }
             });
}

template <typename T>
void swiglu_backward(const T* da, const T* g, const T* u, int64_t ld, T* dg, T* du,
                     int64_t n_tokens, int inter) {
  for_chunks(n_tokens, std::max<int64_t>(1, kRowChunk * 256 / inter),
             [&](int64_t, int64_t t0, int64_t t1) {
               const VecExp<T> vexp;  // a local: its bounds stay in registers
               for (int64_t t = t0; t < t1; ++t) {
                 const T* dar = da + t * inter;
                 const T *gr = g + t * ld, *ur = u + t * ld;
                 T *dgr = dg + t * ld, *dur = du + t * ld;
                 for (int i = 0; i < inter; ++i) {
                   T sig = T(1) / (T(1) + vexp(-gr[i]));
                   dgr[i] = dar[i] * ur[i] * sig * (T(1) + gr[i] * (T(1) - sig));
                   dur[i] = dar[i] * gr[i] * sig;
                 }
               }
             });
}

// ---------------------------------------------------------------------------------------------
// LM head + log-softmax

namespace {

// The head's forward and backward take their logits in chunks of this many rows, from one
// product (gemm_xwt): the same call shapes give the same bits, so the backward's softmax, built
// from its own logits and the forward's lse, sums to one under either matmul precision. The
// sampler's head runs the same kernel.
constexpr int64_t kHeadRows = 256;

// The logits of rows [t0, t1): the one product the head's forward and backward both call.
template <typename T>
void head_logits(const T* h, const T* w, int64_t t0, int64_t t1, int dim, int vocab,
                 Mat<T>& logits) {
  logits.resize(t1 - t0, vocab);
  gemm_xwt(h + t0 * dim, w, static_cast<const T*>(nullptr), logits.data(), t1 - t0, dim, vocab);
}

// Row statistics of z = logits / temperature: log-sum-exp, and the entropy of softmax(z) where
// `entropy` is set (its sums are a third of the work; the lse's bits do not depend on them).
template <typename T>
void row_stats(const T* logits, int vocab, double inv_temp, double& lse, double* entropy) {
  const double mx = scaled_max(logits, vocab, inv_temp);
  // The exponentials a block at a time (a loop that vectorises), then the sums as the sampler's
  // log_sum_exp sums them (LaneSum), so that both give one lse for one row.
  constexpr int kBlock = 256;
  double e[kBlock], pz[kBlock];
  const VecExp<double> vexp;
  LaneSum sum, sum_pz;
  for (int j0 = 0; j0 < vocab; j0 += kBlock) {
    const int m = std::min(kBlock, vocab - j0);
    for (int j = 0; j < m; ++j) e[j] = vexp(logits[j0 + j] * inv_temp - mx);
    sum.add(e, m);
    if (entropy == nullptr) continue;
    for (int j = 0; j < m; ++j) pz[j] = e[j] * (logits[j0 + j] * inv_temp);
    sum_pz.add(pz, m);
  }
  lse = mx + std::log(sum.total());
  if (entropy != nullptr) *entropy = lse - sum_pz.total() / sum.total();
}

// log-sum-exp of logits / temperature over a kept set only.
template <typename T>
double kept_lse(const T* logits, const std::vector<int32_t>& ids, double inv_temp) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int32_t j : ids) mx = std::max(mx, logits[j] * inv_temp);
  double sum = 0;
  for (int32_t j : ids) sum += std::exp(logits[j] * inv_temp - mx);
  return mx + std::log(sum);
}

const std::vector<int32_t>* kept_at(const KeptSets* kept, int64_t t) {
  return kept == nullptr ? nullptr : (*kept)[t];
}

}  // namespace

template <typename T>
void logprob_forward(const T* h, const T* w, const int32_t* targets, T* logprob, T* entropy,
                     T* lse, int64_t n_tokens, int dim, int vocab, double temperature,
                     const KeptSets* kept) {
  AHA_CHECK(kept == nullptr || static_cast<int64_t>(kept->size()) == n_tokens, "one kept set per token");
  AHA_CHECK(temperature > 0, temperature);
  const double inv_temp = 1.0 / temperature;
  Mat<T> logits;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kHeadRows) {
    const int64_t t1 = std::min(n_tokens, t0 + kHeadRows);
    head_logits(h, w, t0, t1, dim, vocab, logits);
    for_chunks(t1 - t0, 8, [&](int64_t, int64_t r0, int64_t r1) {
      for (int64_t t = t0 + r0; t < t0 + r1; ++t) {
        const T* row = logits.data() + (t - t0) * vocab;
        double l, ent = 0;
        row_stats(row, vocab, inv_temp, l, entropy != nullptr ? &ent : nullptr);
        lse[t] = static_cast<T>(l);
        int32_t y = targets[t];
        if (y < 0) {
          logprob[t] = std::numeric_limits<T>::quiet_NaN();
          if (entropy) entropy[t] = std::numeric_limits<T>::quiet_NaN();
          continue;
        }
        AHA_CHECK(y < vocab, "target id ", y, " >= vocab ", vocab);
        if (const auto* ids = kept_at(kept, t); ids != nullptr) {
          AHA_CHECK(std::binary_search(ids->begin(), ids->end(), y), "kept set lacks the target ", y);
          AHA_CHECK(ids->back() < vocab, "kept id ", ids->back(), " >= vocab ", vocab);
          l = kept_lse(row, *ids, inv_temp);
          lse[t] = static_cast<T>(l);
        }
        logprob[t] = static_cast<T>(row[y] * inv_temp - l);
        if (entropy) entropy[t] = static_cast<T>(ent);
      }
    });
  }
}

template <typename T>
void logprob_backward(const T* dlogprob, const T* dentropy, const T* h, const T* w,
                      const int32_t* targets,
                      const T* lse, T* dh, T* dw, int64_t n_tokens, int dim, int vocab,
                      double temperature, const KeptSets* kept) {
  const double inv_temp = 1.0 / temperature;
  // Chunks run one after another (dw is shared); each GEMM inside is parallel.
  Mat<T> logits;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kHeadRows) {
    int64_t t1 = std::min(n_tokens, t0 + kHeadRows);
    int64_t rows = t1 - t0;
    head_logits(h, w, t0, t1, dim, vocab, logits);
    // logits -> dlogits in place: dlp * (onehot(y) - softmax(z)) / temperature
    for_chunks(rows, 8, [&](int64_t, int64_t r0, int64_t r1) {
      const VecExp<double> vexp;  // a local: its bounds stay in registers
      for (int64_t r = r0; r < r1; ++r) {
        T* row = logits.data() + r * vocab;
        int64_t t = t0 + r;
        int32_t y = targets[t];
        T g = y < 0 || dlogprob == nullptr ? T(0) : dlogprob[t];
        const T gh = y < 0 || dentropy == nullptr ? T(0) : dentropy[t];
        if (g == T(0) && gh == T(0)) {
          std::fill(row, row + vocab, T(0));
          continue;
        }
        // Entropy of the full distribution p = softmax(z / T): dH/dz_j = -(p_j / T)(log p_j + H).
        double lf = 0, ent = 0;
        if (gh != T(0)) row_stats(row, vocab, inv_temp, lf, &ent);
        auto dent = [&](double z) {
          return gh == T(0) ? 0.0 : -double(gh) * inv_temp * vexp(z - lf) * (z - lf + ent);
        };
        const double l = lse[t];
        if (const auto* ids = kept_at(kept, t); ids != nullptr) {
          // Only the kept logits take part in the renormalised softmax.
          size_t k = 0;
          for (int j = 0; j < vocab; ++j) {
            const bool in = k < ids->size() && (*ids)[k] == j;
            k += in;
            const double z = row[j] * inv_temp;
            row[j] = static_cast<T>((in ? -g * vexp(z - l) * inv_temp : 0.0) + dent(z));
          }
        } else if (gh == T(0)) {  // the common case, without the entropy term: vectorises
          for (int j = 0; j < vocab; ++j) {
            row[j] = static_cast<T>(-g * vexp(row[j] * inv_temp - l) * inv_temp);
          }
        } else {
          for (int j = 0; j < vocab; ++j) {
            const double z = row[j] * inv_temp;
            row[j] = static_cast<T>(-g * vexp(z - l) * inv_temp + dent(z));
          }
        }
        row[y] += static_cast<T>(g * inv_temp);
      }
    });
    if (dw != nullptr) {  // null: a frozen LM head (LoRA)
      gemm_dytx(logits.data(), h + t0 * dim, dw, static_cast<T*>(nullptr), rows, dim, vocab);
    }
    gemm_dyw(logits.data(), w, dh + t0 * dim, rows, dim, vocab);
  }
}

template <typename T>
void logits_forward(const T* h, const T* w, T* logits, int64_t n_rows, int dim, int vocab) {
  gemm_xwt(h, w, static_cast<const T*>(nullptr), logits, n_rows, dim, vocab);
}

// ---------------------------------------------------------------------------------------------

#define AHA_INSTANTIATE_LAYERS(T)                                                              \
  template void rmsnorm_forward<T>(const T*, const T*, T*, T*, int64_t, int, double, int64_t);  \
  template void rmsnorm_backward<T>(const T*, const T*, const T*, const T*, T*, T*, int64_t,    \
                                    int, int64_t);                                             \
  template void swiglu_forward<T>(const T*, const T*, int64_t, T*, int64_t, int);              \
  template void swiglu_backward<T>(const T*, const T*, const T*, int64_t, T*, T*, int64_t, int); \
  template void logprob_forward<T>(const T*, const T*, const int32_t*, T*, T*, T*, int64_t,     \
                                   int, int, double, const KeptSets*);                         \
  template void logprob_backward<T>(const T*, const T*, const T*, const T*, const int32_t*,    \
                                    const T*, T*, T*, int64_t, int, int, double,               \
                                    const KeptSets*);                                          \
  template void logits_forward<T>(const T*, const T*, T*, int64_t, int, int);

AHA_INSTANTIATE_LAYERS(float)
AHA_INSTANTIATE_LAYERS(double)

}  // namespace aha::policy
