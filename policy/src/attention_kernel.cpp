// Causal softmax attention over packed sequences, forward and backward (the training path),
// with the optional window or per-row key selection of the attention kinds.
// Forward saves only the log-sum-exp per query row; backward recomputes the probabilities.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "aha/core/error.h"
#include "aha/core/gemm_serial.h"
#include "aha/core/tensor.h"
#include "aha/policy/attention.h"
#include "attention_fused.h"

namespace aha::policy {

namespace {

constexpr int64_t kQueryBlock = 64;

struct Task {
  int64_t seq_start;  // first token of the sequence
  int64_t r0, r1;     // query rows, relative to seq_start
  int head;
};

// Queries r0..r0+rows of one head see keys 0..r1 of their sequence: p[rows, r1] (rows every r1
// values) = mask(Q K^T * scale), before the softmax. The mask is causal, narrowed by the shape's
// window or per-row selection; seq_start finds the selection of each query row. The products
// are one BLAS call each (Eigen's were ~13% of a training step, 1.3x slower at these shapes).
template <typename T>
void block_scores(const T* q, int64_t ldq, const T* k, int64_t ldk, int64_t r0, int64_t rows,
                  int64_t r1, const AttnShape& s, int64_t seq_start, T* p) {
  constexpr T kMasked = -std::numeric_limits<T>::infinity();
  gemm_serial(false, true, rows, r1, s.qk_dim, static_cast<T>(s.scale), q, ldq, k, ldk, T(0), p,
              r1);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t qi = r0 + i;
    T* row = p + i * r1;
    std::fill(row + qi + 1, row + r1, kMasked);
    if (s.window > 0 && qi - s.window >= 0) std::fill(row, row + qi - s.window + 1, kMasked);
    if (s.selected == nullptr) continue;
    const std::vector<int32_t>& sel = (*s.selected)[seq_start + qi];
    if (sel.empty()) continue;
    AHA_CHECK(sel.back() <= qi, "selected key ", sel.back(), " after query ", qi);
    size_t next = 0;
    for (int64_t j = 0; j <= qi; ++j) {
      if (next < sel.size() && sel[next] == j) {
        ++next;
      } else {
        row[j] = kMasked;
      }
    }
  }
}

// A row of a score block. Eigen's vectorised sum peels to the pointer's alignment, so the rows
// live in Eigen-allocated (aligned) blocks: the sum order, and so the bits, do not depend on the
// thread or the allocation.
template <typename T>
using RowMap = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;

}  // namespace

template <typename T>
void attention_forward(const T* q, const T* k, const T* v, T* out, T* lse,
                       const std::vector<int64_t>& seq_starts, const AttnShape& s) {
  AHA_CHECK(s.n_heads % s.n_kv_heads == 0, s.n_heads, " ", s.n_kv_heads);
  if constexpr (std::is_same_v<T, float>) {
    if (fused_attention_fits(s)) return fused_attention_forward(q, k, v, out, lse, seq_starts, s);
  }
  const int64_t n = seq_starts.back();
  const auto [qs, ks, vs, os, group] = attn_strides(s);
  std::vector<Task> tasks;
  for (size_t i = 0; i + 1 < seq_starts.size(); ++i) {
    int64_t len = seq_starts[i + 1] - seq_starts[i];
    for (int64_t r0 = 0; r0 < len; r0 += kQueryBlock) {
      for (int h = 0; h < s.n_heads; ++h) {
        tasks.push_back({seq_starts[i], r0, std::min(len, r0 + kQueryBlock), h});
      }
    }
  }
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, tasks.size(), 1),
      [&](const tbb::blocked_range<size_t>& range) {
        Mat<T> P;  // Eigen's allocation: aligned, so the row sums' order is fixed (see RowMap)
        for (size_t ti = range.begin(); ti < range.end(); ++ti) {
          const Task& t = tasks[ti];
          const int kh = t.head / group;
          const int64_t rows = t.r1 - t.r0;
          P.resize(rows, t.r1);
          block_scores(q + (t.seq_start + t.r0) * qs + t.head * s.qk_dim, qs,
                       k + t.seq_start * ks + kh * s.qk_dim, ks, t.r0, rows, t.r1, s, t.seq_start,
                       P.data());
          for (int64_t i = 0; i < rows; ++i) {
            RowMap<T> row(P.data() + i * t.r1, t.r1);
            T mx = row.maxCoeff();
            row = (row - mx).exp();
            T sum = row.sum();
            row /= sum;
            lse[t.head * n + t.seq_start + t.r0 + i] = mx + std::log(sum);
          }
          gemm_serial(false, false, rows, s.v_dim, t.r1, T(1), P.data(), t.r1,
                      v + t.seq_start * vs + kh * s.v_dim, vs, T(0),
                      out + (t.seq_start + t.r0) * os + t.head * s.v_dim, os);
        }
      },
      tbb::simple_partitioner());
}

template <typename T>
void attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, T* dq, T* dk, T* dv, const std::vector<int64_t>& seq_starts,
                        const AttnShape& s) {
  if constexpr (std::is_same_v<T, float>) {
    if (fused_attention_fits(s)) {
      return fused_attention_backward(dout, q, k, v, out, lse, dq, dk, dv, seq_starts, s);
    }
  }
  const int64_t n = seq_starts.back();
  const auto [qs, ks, vs, os, group] = attn_strides(s);
  const size_t n_seqs = seq_starts.size() - 1;
  // One task per (sequence, kv head): it owns that slice of dk and dv, so no two tasks write
  // the same memory and the accumulation order is fixed.
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, n_seqs * s.n_kv_heads, 1),
      [&](const tbb::blocked_range<size_t>& range) {
        Mat<T> P, dP;
        for (size_t ti = range.begin(); ti < range.end(); ++ti) {
          const int64_t s0 = seq_starts[ti / s.n_kv_heads];
          const int64_t len = seq_starts[ti / s.n_kv_heads + 1] - s0;
          const int kh = static_cast<int>(ti % s.n_kv_heads);
          T* dK = dk + s0 * ks + kh * s.qk_dim;
          T* dV = dv + s0 * vs + kh * s.v_dim;
          for (int64_t j = 0; j < len; ++j) {
            std::fill_n(dK + j * ks, s.qk_dim, T(0));
            std::fill_n(dV + j * vs, s.v_dim, T(0));
          }
          const T* K = k + s0 * ks + kh * s.qk_dim;
          const T* V = v + s0 * vs + kh * s.v_dim;
          for (int h = kh * group; h < (kh + 1) * group; ++h) {
            for (int64_t r0 = 0; r0 < len; r0 += kQueryBlock) {
              const int64_t r1 = std::min(len, r0 + kQueryBlock), rows = r1 - r0;
              const T* Q = q + (s0 + r0) * qs + h * s.qk_dim;
              const T* O = out + (s0 + r0) * os + h * s.v_dim;
              const T* dO = dout + (s0 + r0) * os + h * s.v_dim;
              P.resize(rows, r1);
              dP.resize(rows, r1);
              block_scores(Q, qs, K, ks, r0, rows, r1, s, s0, P.data());
              gemm_serial(false, true, rows, r1, s.v_dim, T(1), dO, os, V, vs, T(0), dP.data(), r1);
              for (int64_t i = 0; i < rows; ++i) {
                RowMap<T> p(P.data() + i * r1, r1), dp(dP.data() + i * r1, r1);
                p = (p - lse[h * n + s0 + r0 + i]).exp();
                T D = 0;  // sum_j dO_ij O_ij
                for (int j = 0; j < s.v_dim; ++j) D += dO[i * os + j] * O[i * os + j];
                // dS = P * (dP - D), then scaled once for both dQ and dK.
                dp = p * (dp - D) * static_cast<T>(s.scale);
              }
              gemm_serial(false, false, rows, s.qk_dim, r1, T(1), dP.data(), r1, K, ks, T(0),
                          dq + (s0 + r0) * qs + h * s.qk_dim, qs);
              gemm_serial(true, false, r1, s.qk_dim, rows, T(1), dP.data(), r1, Q, qs, T(1), dK,
                          ks);
              gemm_serial(true, false, r1, s.v_dim, rows, T(1), P.data(), r1, dO, os, T(1), dV, vs);
            }
          }
        }
      },
      tbb::simple_partitioner());
}

template void attention_forward<float>(const float*, const float*, const float*, float*, float*,
                                       const std::vector<int64_t>&, const AttnShape&);
template void attention_forward<double>(const double*, const double*, const double*, double*,
                                        double*, const std::vector<int64_t>&, const AttnShape&);
template void attention_backward<float>(const float*, const float*, const float*, const float*,
                                        const float*, const float*, float*, float*, float*,
                                        const std::vector<int64_t>&, const AttnShape&);
template void attention_backward<double>(const double*, const double*, const double*,
                                         const double*, const double*, const double*, double*,
                                         double*, double*, const std::vector<int64_t>&,
                                         const AttnShape&);

}  // namespace aha::policy
