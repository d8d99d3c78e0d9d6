// Sparse (top-k) KL divergence through the LM head, forward and backward, for distillation.
#include "aha/distill/kd_loss.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "aha/core/error.h"
#include "aha/core/tensor.h"

namespace aha::distill {

void SparseTargets::add_row(const int32_t* row_ids, const float* row_logprobs, int k,
                            float row_weight) {
  ids.insert(ids.end(), row_ids, row_ids + k);
  logprobs.insert(logprobs.end(), row_logprobs, row_logprobs + k);
  offsets.push_back(static_cast<int64_t>(ids.size()));
  weight.push_back(row_weight);
}

namespace {

// Rows of logits handled per GEMM: bounds the [rows, vocab] scratch.
constexpr int64_t kKlChunk = 128;
// Floor of the teacher's tail mass under reverse KL: log(0) would make the loss infinite.
constexpr double kMinTail = 1e-8;

// KL of one row from its logits z [vocab]; overwrites z with dKL/dz * scale when grad is set.
// `in_set` is scratch of vocab zeros, returned zeroed.
template <typename T>
double row_kl(T* z, int vocab, const int32_t* ids, const float* lp, int k, const KlOptions& o,
              double scale, bool grad, std::vector<char>& in_set) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < vocab; ++j) mx = std::max(mx, double(z[j]));
  double sum = 0;
  for (int j = 0; j < vocab; ++j) sum += std::exp(double(z[j]) - mx);
  const double lse = mx + std::log(sum);
  // Every id given: no tail bucket (the teacher's rounding would otherwise put mass there).
  const bool tail = (o.tail || o.direction == KlDirection::kReverse) && k < vocab;
  double p_top = 0, q_top = 0;
  for (int i = 0; i < k; ++i) {
    AHA_CHECK(ids[i] >= 0 && ids[i] < vocab, "teacher id ", ids[i], " outside vocab ", vocab);
    AHA_CHECK(!in_set[ids[i]], "teacher id ", ids[i], " twice in one row");
    in_set[ids[i]] = 1;
    p_top += std::exp(double(lp[i]));
    q_top += std::exp(double(z[ids[i]]) - lse);
  }
  // The student's mass outside the top-k, summed directly: 1 - q_top cancels badly near 1.
  double q_rest = 0;
  for (int j = 0; j < vocab; ++j) {
    if (!in_set[j]) q_rest += std::exp(double(z[j]) - lse);
  }
  double p_rest = tail ? std::max(0.0, 1.0 - p_top) : 0.0;
  const double p_norm = tail ? 1.0 : 1.0 / p_top;  // renormalise the top-k without a tail
  const double log_p_norm = std::log(p_norm);
  if (o.direction == KlDirection::kReverse) p_rest = std::max(p_rest, kMinTail);
  const double log_q_rest = std::log(std::max(q_rest, 1e-300));
  double kl = 0;
  if (o.direction == KlDirection::kForward) {
    for (int i = 0; i < k; ++i) {
      double p = std::exp(double(lp[i])) * p_norm;
      if (p > 0) kl += p * (std::log(p) - (double(z[ids[i]]) - lse));
    }
    if (p_rest > 0) kl += p_rest * (std::log(p_rest) - log_q_rest);
  } else {
    for (int i = 0; i < k; ++i) {
      double lq = double(z[ids[i]]) - lse;
      kl += std::exp(lq) * (lq - double(lp[i]) - log_p_norm);
    }
    kl += q_rest * (log_q_rest - std::log(p_rest));
  }
  if (grad) {
    // Forward: dKL/dz_j = q_j * sum_b p_b - (p_j for a top-k id, p_rest * q_j / q_rest otherwise).
    // Reverse: dKL/dz_j = q_j * (log q_b(j) - log p_b(j) - KL).
    const double p_sum = tail ? p_top + p_rest : 1.0;
    const double g_rest = o.direction == KlDirection::kForward
                              ? (q_rest > 0 ? p_rest / q_rest : 0.0)
                              : log_q_rest - std::log(p_rest) - kl;
    for (int j = 0; j < vocab; ++j) {
      if (in_set[j]) continue;
      double q = std::exp(double(z[j]) - lse);
      z[j] = static_cast<T>(
          scale * (o.direction == KlDirection::kForward ? q * (p_sum - g_rest) : q * g_rest));
    }
    for (int i = 0; i < k; ++i) {
      double lq = double(z[ids[i]]) - lse, q = std::exp(lq);
      double g = o.direction == KlDirection::kForward ? q * p_sum - std::exp(double(lp[i])) * p_norm
                                                      : q * (lq - double(lp[i]) - log_p_norm - kl);
      z[ids[i]] = static_cast<T>(scale * g);
    }
  }
  for (int i = 0; i < k; ++i) in_set[ids[i]] = 0;
  return kl;
}

}  // namespace

template <typename T>
double sparse_kl_forward_backward(const T* h, const T* w, const SparseTargets& tg,
                                  const KlOptions& opts, T* dh, T* dw, int dim, int vocab,
                                  T* kl_rows) {
  const int64_t n = tg.n_rows();
  AHA_CHECK(static_cast<int64_t>(tg.weight.size()) == n, "weights ", tg.weight.size(), " rows ", n);
  AHA_CHECK(tg.ids.size() == tg.logprobs.size(), "ids ", tg.ids.size(), " logprobs ",
            tg.logprobs.size());
  const bool grad = dh != nullptr && dw != nullptr;
  // Only rows with targets and weight cost a GEMM: prompts and padding are skipped.
  std::vector<int64_t> active;
  for (int64_t r = 0; r < n; ++r) {
    if (kl_rows) kl_rows[r] = T(0);
    if (tg.weight[r] != 0.0f && tg.offsets[r + 1] > tg.offsets[r]) active.push_back(r);
  }
  double total = 0;
  Mat<T> hc, logits, dhc;
  std::vector<double> row_loss;
  for (size_t c0 = 0; c0 < active.size(); c0 += kKlChunk) {
    const int64_t m = std::min<int64_t>(kKlChunk, static_cast<int64_t>(active.size() - c0));
    hc.resize(m, dim);
    for (int64_t i = 0; i < m; ++i) std::copy_n(h + active[c0 + i] * dim, dim, hc.data() + i * dim);
    logits.resize(m, vocab);
    gemm_xwt(hc.data(), w, static_cast<const T*>(nullptr), logits.data(), m, dim, vocab);
    row_loss.assign(m, 0.0);
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, m, 8), [&](const tbb::blocked_range<int64_t>& br) {
          std::vector<char> in_set(vocab, 0);
          for (int64_t i = br.begin(); i < br.end(); ++i) {
            const int64_t r = active[c0 + i];
            const int64_t o = tg.offsets[r];
            const int k = static_cast<int>(tg.offsets[r + 1] - o);
            row_loss[i] = row_kl(logits.data() + i * vocab, vocab, tg.ids.data() + o,
                                 tg.logprobs.data() + o, k, opts, tg.weight[r], grad, in_set);
          }
        });
    for (int64_t i = 0; i < m; ++i) {  // summed in row order: independent of the thread count
      const int64_t r = active[c0 + i];
      total += tg.weight[r] * row_loss[i];
      if (kl_rows) kl_rows[r] = static_cast<T>(row_loss[i]);
    }
    if (!grad) continue;
    gemm_dytx(logits.data(), hc.data(), dw, static_cast<T*>(nullptr), m, dim, vocab);
    dhc.setZero(m, dim);
    gemm_dyw(logits.data(), w, dhc.data(), m, dim, vocab);
    for (int64_t i = 0; i < m; ++i) {
      T* dst = dh + active[c0 + i] * dim;
      for (int d = 0; d < dim; ++d) dst[d] += dhc(i, d);
    }
  }
  return total;
}

template <typename T>
void append_topk_logprobs(const T* logits, int64_t n_rows, int vocab, int k,
                          const float* row_weight, SparseTargets& out) {
  AHA_CHECK(k >= 1 && k <= vocab, "top_k ", k, " of vocab ", vocab);
  std::vector<int32_t> ids(static_cast<size_t>(n_rows) * k);
  std::vector<float> lps(static_cast<size_t>(n_rows) * k);
  tbb::parallel_for(int64_t{0}, n_rows, [&](int64_t r) {
    const T* z = logits + r * vocab;
    double mx = *std::max_element(z, z + vocab), sum = 0;
    for (int j = 0; j < vocab; ++j) sum += std::exp(double(z[j]) - mx);
    const double lse = mx + std::log(sum);
    std::vector<int32_t> idx(vocab);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
    for (int i = 0; i < k; ++i) {
      ids[r * k + i] = idx[i];
      lps[r * k + i] = static_cast<float>(double(z[idx[i]]) - lse);
    }
  });
  for (int64_t r = 0; r < n_rows; ++r) {
    out.add_row(ids.data() + r * k, lps.data() + r * k, k, row_weight ? row_weight[r] : 1.0f);
  }
}

#define AHA_INSTANTIATE_KD(T)                                                             \
  template double sparse_kl_forward_backward<T>(const T*, const T*, const SparseTargets&, \
                                                const KlOptions&, T*, T*, int, int, T*);  \
  template void append_topk_logprobs<T>(const T*, int64_t, int, int, const float*, SparseTargets&);

AHA_INSTANTIATE_KD(float)
AHA_INSTANTIATE_KD(double)

}  // namespace aha::distill
