// MoE balance losses: values and router-logit gradients (moe_balance.h).
#include "moe_balance.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <numeric>

#include "aha/core/dist.h"

namespace aha::policy {

namespace {

// The losses see normalised scores s' (softmax: the scores; sigmoid: s / sum s, as DeepSeek-V3
// normalises for its sequence-wise loss). Adds the router-logit gradient of a token with scores
// s [E] from g [E] = d loss / d s'.
template <typename T>
void add_normalised_score_grad(const ModelConfig& c, const T* s, const double* g, T* dl) {
  const int E = c.n_routed_experts;
  if (c.scoring_func == ScoreFunc::kSoftmax) {
    double dot = 0;
    for (int e = 0; e < E; ++e) dot += g[e] * s[e];
    for (int e = 0; e < E; ++e) dl[e] += static_cast<T>(s[e] * (g[e] - dot));
  } else {
    double z = std::accumulate(s, s + E, 0.0), dot = 0;
    for (int e = 0; e < E; ++e) dot += g[e] * s[e] / z;
    for (int e = 0; e < E; ++e) dl[e] += static_cast<T>((g[e] - dot) / z * s[e] * (1.0 - s[e]));
  }
}

template <typename T>
double score_norm(const ModelConfig& c, const T* s) {
  return c.scoring_func == ScoreFunc::kSigmoid ? std::accumulate(s, s + c.n_routed_experts, 0.0)
                                               : 1.0;
}

}  // namespace

template <typename T>
double balance_loss(const ModelConfig& c, const SeqLayout& layout, const MoeActs<T>& a) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  double loss = 0;
  const size_t n_seqs = layout.seq_starts.size() - 1;
  std::vector<double> f(E), P(E);
  for (size_t sq = 0; sq < n_seqs; ++sq) {
    int64_t t0 = layout.seq_starts[sq], t1 = layout.seq_starts[sq + 1];
    if (t1 == t0) continue;
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(P.begin(), P.end(), 0.0);
    for (int64_t t = t0; t < t1; ++t) {
      for (int k = 0; k < K; ++k) f[a.topk[t * K + k]] += 1.0;
      const T* s = a.scores.data() + t * E;
      const double z = score_norm(c, s);
      for (int e = 0; e < E; ++e) P[e] += s[e] / z;
    }
    double l = 0;
    for (int e = 0; e < E; ++e) l += f[e] * E / (K * double(t1 - t0)) * P[e] / double(t1 - t0);
    loss += l / n_seqs;
  }
  return loss;
}

template <typename T>
void balance_loss_grad(const ModelConfig& c, const SeqLayout& layout, const MoeActs<T>& a,
                       double coef, T* dlogits) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  const size_t n_seqs = layout.seq_starts.size() - 1;
  std::vector<double> f(E), g(E);
  for (size_t sq = 0; sq < n_seqs; ++sq) {
    int64_t t0 = layout.seq_starts[sq], t1 = layout.seq_starts[sq + 1];
    if (t1 == t0) continue;
    double len = double(t1 - t0);
    std::fill(f.begin(), f.end(), 0.0);
    for (int64_t t = t0; t < t1; ++t) {
      for (int k = 0; k < K; ++k) f[a.topk[t * K + k]] += 1.0;
    }
    for (int e = 0; e < E; ++e) g[e] = coef / n_seqs * f[e] * E / (K * len) / len;
    for (int64_t t = t0; t < t1; ++t) {
      add_normalised_score_grad(c, a.scores.data() + t * E, g.data(), dlogits + t * E);
    }
  }
}

// V2 with D devices of `per` experts, T tokens, M = topk_devices:
//   f_j = E / (K T) * #tokens choosing j,        P_j = 1/T * sum_t s'_{t,j}
//   device:  f'_i = mean of f_j over device i,   P'_i = sum of P_j over device i
//   comm:    f''_i = D / (M T) * #tokens sent to device i (any of their experts there)
//   device_loss = sum_i f'_i P'_i,  comm_loss = sum_i f''_i P'_i.
// The f are counts, constants of the gradient, so d loss / d s'_{t,j} does not depend on t:
// (alpha2 f'_i + alpha3 f''_i) / T for j on device i. Only counts and T enter it, and those
// sum exactly over ranks: an expert-parallel rank's gradient is the one rank's bit for bit.
template <typename T>
void device_balance_forward(const ModelConfig& c, int64_t n, MoeActs<T>& a) {
  a.device_loss = a.comm_loss = 0;
  a.device_score_grad.clear();
  if (!c.has_device_balance()) return;
  const int E = c.n_routed_experts, K = c.num_experts_per_tok, D = c.n_devices, per = E / D;
  // This rank's tokens: [choices per expert E | tokens sent per device D | score sums E | n].
  std::vector<double> st(2 * E + D + 1, 0.0);
  double* chosen = st.data();
  double* sent = chosen + E;
  double* psum = sent + D;
  std::vector<char> to(D);
  for (int64_t t = 0; t < n; ++t) {
    std::fill(to.begin(), to.end(), 0);
    for (int k = 0; k < K; ++k) {
      const int e = a.topk[t * K + k];
      chosen[e] += 1;
      to[e / per] = 1;
    }
    for (int i = 0; i < D; ++i) sent[i] += to[i];
    const T* s = a.scores.data() + t * E;
    const double z = score_norm(c, s);
    for (int e = 0; e < E; ++e) psum[e] += s[e] / z;
  }
  st.back() = static_cast<double>(n);
  if (a.ep.on()) dist::allreduce_sum(st.data(), st.size(), "MoE balance statistics");
  const double tokens = st.back();
  a.device_score_grad.assign(E, 0.0);
  if (tokens == 0) return;
  for (int i = 0; i < D; ++i) {
    double f_dev = 0, p_dev = 0;
    for (int j = i * per; j < (i + 1) * per; ++j) {
      f_dev += E / (K * tokens) * chosen[j];
      p_dev += psum[j] / tokens;
    }
    f_dev /= per;
    const double f_comm = D / (c.topk_devices * tokens) * sent[i];
    a.device_loss += f_dev * p_dev;
    a.comm_loss += f_comm * p_dev;
    const double g = (c.device_balance_alpha * f_dev + c.comm_balance_alpha * f_comm) / tokens;
    std::fill_n(a.device_score_grad.begin() + i * per, per, g);
  }
}

template <typename T>
void device_balance_grad(const ModelConfig& c, int64_t n, const MoeActs<T>& a, double weight,
                         T* dlogits) {
  if (weight == 0 || a.device_score_grad.empty() || n == 0) return;
  const int E = c.n_routed_experts;
  std::vector<double> g(a.device_score_grad);
  for (double& v : g) v *= weight;
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, n, 64), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t t = r.begin(); t < r.end(); ++t) {
          add_normalised_score_grad(c, a.scores.data() + t * E, g.data(), dlogits + t * E);
        }
      });
}

#define AHA_INSTANTIATE_MOE_BALANCE(T)                                                        \
  template double balance_loss<T>(const ModelConfig&, const SeqLayout&, const MoeActs<T>&);   \
  template void balance_loss_grad<T>(const ModelConfig&, const SeqLayout&, const MoeActs<T>&, \
                                     double, T*);                                             \
  template void device_balance_forward<T>(const ModelConfig&, int64_t, MoeActs<T>&);          \
  template void device_balance_grad<T>(const ModelConfig&, int64_t, const MoeActs<T>&, double, T*);

AHA_INSTANTIATE_MOE_BALANCE(float)
AHA_INSTANTIATE_MOE_BALANCE(double)

}  // namespace aha::policy
