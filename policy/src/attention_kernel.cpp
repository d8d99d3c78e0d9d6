// Causal softmax attention over packed sequences, forward and backward (the training path),
// with the optional window or per-row key selection of the attention kinds.
// Forward saves only the log-sum-exp per query row; backward recomputes the probabilities.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/policy/attention.h"

namespace aha::policy {

namespace {

constexpr int64_t kQueryBlock = 64;

struct Task {
  int64_t seq_start;  // first token of the sequence
  int64_t r0, r1;     // query rows, relative to seq_start
  int head;
};

// Queries r0..r1 of one head see keys 0..r1 of their sequence: P = softmax(mask(Q K^T * scale)).
// The mask is causal, narrowed by the shape's window or per-row selection; seq_start finds the
// selection of each query row.
template <typename T>
void block_probs(const CStridedMap<T>& Q, const CStridedMap<T>& K, int64_t r0, const AttnShape& s,
                 int64_t seq_start, Mat<T>& P) {
  constexpr T kMasked = -std::numeric_limits<T>::infinity();
  P.noalias() = Q * K.transpose();
  P *= static_cast<T>(s.scale);
  for (int64_t i = 0; i < P.rows(); ++i) {
    const int64_t qi = r0 + i;
    for (int64_t j = qi + 1; j < P.cols(); ++j) P(i, j) = kMasked;
    if (s.window > 0) {
      for (int64_t j = 0; j <= qi - s.window; ++j) P(i, j) = kMasked;
    }
    if (s.selected == nullptr) continue;
    const std::vector<int32_t>& sel = (*s.selected)[seq_start + qi];
    if (sel.empty()) continue;
    AHA_CHECK(sel.back() <= qi, "selected key ", sel.back(), " after query ", qi);
    size_t next = 0;
    for (int64_t j = 0; j <= qi; ++j) {
      if (next < sel.size() && sel[next] == j) {
        ++next;
      } else {
        P(i, j) = kMasked;
      }
    }
  }
}

}  // namespace

template <typename T>
void attention_forward(const T* q, const T* k, const T* v, T* out, T* lse,
                       const std::vector<int64_t>& seq_starts, const AttnShape& s) {
  AHA_CHECK(s.n_heads % s.n_kv_heads == 0, s.n_heads, " ", s.n_kv_heads);
  const int64_t n = seq_starts.back();
  const int64_t qs = int64_t{s.n_heads} * s.qk_dim, ks = int64_t{s.n_kv_heads} * s.qk_dim;
  const int64_t vs = int64_t{s.n_kv_heads} * s.v_dim, os = int64_t{s.n_heads} * s.v_dim;
  const int group = s.n_heads / s.n_kv_heads;
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
        Mat<T> P;
        for (size_t ti = range.begin(); ti < range.end(); ++ti) {
          const Task& t = tasks[ti];
          const int kh = t.head / group;
          const int64_t rows = t.r1 - t.r0;
          CStridedMap<T> Q(q + (t.seq_start + t.r0) * qs + t.head * s.qk_dim, rows, s.qk_dim,
                           Eigen::OuterStride<>(qs));
          CStridedMap<T> K(k + t.seq_start * ks + kh * s.qk_dim, t.r1, s.qk_dim,
                           Eigen::OuterStride<>(ks));
          CStridedMap<T> V(v + t.seq_start * vs + kh * s.v_dim, t.r1, s.v_dim,
                           Eigen::OuterStride<>(vs));
          StridedMap<T> O(out + (t.seq_start + t.r0) * os + t.head * s.v_dim, rows, s.v_dim,
                          Eigen::OuterStride<>(os));
          block_probs(Q, K, t.r0, s, t.seq_start, P);
          for (int64_t i = 0; i < rows; ++i) {
            auto row = P.row(i);
            T mx = row.maxCoeff();
            row = (row.array() - mx).exp();
            T sum = row.sum();
            row /= sum;
            lse[t.head * n + t.seq_start + t.r0 + i] = mx + std::log(sum);
          }
          O.noalias() = P * V;
        }
      },
      tbb::simple_partitioner());
}

template <typename T>
void attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, T* dq, T* dk, T* dv, const std::vector<int64_t>& seq_starts,
                        const AttnShape& s) {
  const int64_t n = seq_starts.back();
  const int64_t qs = int64_t{s.n_heads} * s.qk_dim, ks = int64_t{s.n_kv_heads} * s.qk_dim;
  const int64_t vs = int64_t{s.n_kv_heads} * s.v_dim, os = int64_t{s.n_heads} * s.v_dim;
  const int group = s.n_heads / s.n_kv_heads;
  const size_t n_seqs = seq_starts.size() - 1;
  // One task per (sequence, kv head): it owns that slice of dk and dv, so no two tasks write
  // the same memory and the accumulation order is fixed.
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, n_seqs * s.n_kv_heads, 1),
      [&](const tbb::blocked_range<size_t>& range) {
        Mat<T> P, dP;
        Eigen::Matrix<T, Eigen::Dynamic, 1> D;
        for (size_t ti = range.begin(); ti < range.end(); ++ti) {
          const int64_t s0 = seq_starts[ti / s.n_kv_heads];
          const int64_t len = seq_starts[ti / s.n_kv_heads + 1] - s0;
          const int kh = static_cast<int>(ti % s.n_kv_heads);
          StridedMap<T> dK(dk + s0 * ks + kh * s.qk_dim, len, s.qk_dim, Eigen::OuterStride<>(ks));
          StridedMap<T> dV(dv + s0 * vs + kh * s.v_dim, len, s.v_dim, Eigen::OuterStride<>(vs));
          dK.setZero();
          dV.setZero();
          for (int h = kh * group; h < (kh + 1) * group; ++h) {
            for (int64_t r0 = 0; r0 < len; r0 += kQueryBlock) {
              const int64_t r1 = std::min(len, r0 + kQueryBlock), rows = r1 - r0;
              CStridedMap<T> Q(q + (s0 + r0) * qs + h * s.qk_dim, rows, s.qk_dim,
                               Eigen::OuterStride<>(qs));
              CStridedMap<T> K(k + s0 * ks + kh * s.qk_dim, r1, s.qk_dim,
                               Eigen::OuterStride<>(ks));
              CStridedMap<T> V(v + s0 * vs + kh * s.v_dim, r1, s.v_dim, Eigen::OuterStride<>(vs));
              CStridedMap<T> O(out + (s0 + r0) * os + h * s.v_dim, rows, s.v_dim,
                               Eigen::OuterStride<>(os));
              CStridedMap<T> dO(dout + (s0 + r0) * os + h * s.v_dim, rows, s.v_dim,
                                Eigen::OuterStride<>(os));
              StridedMap<T> dQ(dq + (s0 + r0) * qs + h * s.qk_dim, rows, s.qk_dim,
                               Eigen::OuterStride<>(qs));
              block_probs(Q, K, r0, s, s0, P);
              for (int64_t i = 0; i < rows; ++i) {
                P.row(i) = (P.row(i).array() - lse[h * n + s0 + r0 + i]).exp();
              }
              dP.noalias() = dO * V.transpose();
              D = (dO.array() * O.array()).rowwise().sum();
              // dS = P * (dP - D), then scaled once for both dQ and dK.
              dP = (P.array() * (dP.colwise() - D).array()) * static_cast<T>(s.scale);
              dQ.noalias() = dP * K;
              dK.topRows(r1).noalias() += dP.transpose() * Q;
              dV.topRows(r1).noalias() += P.transpose() * dO;
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
