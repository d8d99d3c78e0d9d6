// DeepSeekMoE (router, expert selection, routed + shared experts, the balance losses of
// moe_balance.cpp), forward and backward.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/policy/moe.h"
#include "moe_balance.h"
#include "moe_ep.h"

namespace aha::policy {

MoeP add_moe(ParamTable& t, const std::string& prefix, const ModelConfig& c) {
  MoeP p;
  const int d = c.hidden_size;
  p.gate = add_linear(t, prefix + ".gate", d, c.n_routed_experts);
  if (c.topk_method == TopkMethod::kNoauxTc) {
    p.e_bias = t.add(prefix + ".gate.e_score_correction_bias", {c.n_routed_experts}, false);
  }
  // Sharded expert parallelism: another rank's experts get no storage (and no table entry).
  p.experts.resize(c.n_routed_experts);
  for (int e = 0; e < c.n_routed_experts; ++e) {
    if (!c.ep.holds(e, c.n_routed_experts)) continue;
    p.experts[e] = add_mlp(t, prefix + ".experts." + std::to_string(e), d, c.moe_intermediate_size);
  }
  if (c.n_shared_experts > 0) {
    p.has_shared = true;
    p.shared = add_mlp(t, prefix + ".shared_experts", d,
                       c.moe_intermediate_size * c.n_shared_experts);
  }
  return p;
}

namespace {

// Indices of the k largest values, largest first; ties go to the lower index (deterministic).
// Routing's k are small: one pass keeps the best k so far in order, a value entering only when
// it beats the k-th (strictly: an equal later value stays behind), where a partial sort of an
// index vector took 2% of a prefill. The partial sort stays for large k.
template <typename T>
void top_k(const T* v, int n, int k, int32_t* out) {
  constexpr int kMaxK = 16;
  if (k <= kMaxK && k <= n) {
    T val[kMaxK];
    int m = 0;
    for (int i = 0; i < n; ++i) {
      const T x = v[i];
      if (m == k && !(x > val[k - 1])) continue;
      int p = m < k ? m++ : k - 1;
      for (; p > 0 && x > val[p - 1]; --p) {
        val[p] = val[p - 1];
        out[p] = out[p - 1];
      }
      val[p] = x;
      out[p] = i;
    }
    return;
  }
  thread_local std::vector<int32_t> idx;
  idx.resize(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  std::copy_n(idx.begin(), k, out);
}

enum class BlockScore { kMax, kTopTwoSum };

// Keeps the n_keep of n_blocks contiguous expert blocks with the highest scores (a block's best
// choice value, or its two best summed) and masks the others' experts with -inf (DeepSeek's
// reference) rather than 0, so that a masked expert can never win. Groups (V2/V3) and devices
// (V2's device-limited routing) are both such blocks.
template <typename T>
void limit_blocks(std::vector<T>& choice, int n_blocks, int n_keep, BlockScore how) {
  const int E = static_cast<int>(choice.size()), per = E / n_blocks;
  // Per thread, not per token: routing a decode step's few tokens was mostly these allocations.
  thread_local std::vector<T> block_score;
  thread_local std::vector<int32_t> kept;
  thread_local std::vector<char> keep;
  block_score.resize(n_blocks);
  for (int g = 0; g < n_blocks; ++g) {
    const T* s = choice.data() + g * per;
    if (how == BlockScore::kMax) {
      block_score[g] = *std::max_element(s, s + per);
    } else {
      int32_t best[2];
      top_k(s, per, 2, best);
      block_score[g] = s[best[0]] + s[best[1]];
    }
  }
  kept.resize(n_keep);
  top_k(block_score.data(), n_blocks, n_keep, kept.data());
  keep.assign(n_blocks, 0);
  for (int32_t g : kept) keep[g] = 1;
  for (int e = 0; e < E; ++e) {
    if (!keep[e / per]) choice[e] = -std::numeric_limits<T>::infinity();
  }
}

template <typename T>
void select_impl(const ModelConfig& c, const T* scores, const T* bias, int32_t* topk) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  thread_local std::vector<T> choice;
  choice.assign(scores, scores + E);
  if (c.topk_method == TopkMethod::kNoauxTc && bias != nullptr) {
    for (int e = 0; e < E; ++e) choice[e] += bias[e];
  }
  // Devices first: their experts with the highest affinity (V2: "select M devices that have
  // experts with the highest affinity scores"); groups nest inside them (model_config.cpp).
  if (c.topk_devices < c.n_devices) {
    limit_blocks(choice, c.n_devices, c.topk_devices, BlockScore::kMax);
  }
  if (c.topk_method != TopkMethod::kGreedy && c.n_group > 1) {
    limit_blocks(choice, c.n_group, c.topk_group,
                 c.topk_method == TopkMethod::kGroupLimitedGreedy ? BlockScore::kMax
                                                                   : BlockScore::kTopTwoSum);
  }
  top_k(choice.data(), E, K, topk);
}

template <typename T>
bool normalises(const ModelConfig& c) {
  return c.num_experts_per_tok > 1 && c.norm_topk_prob;
}

// V2 scales by routed_scaling_factor only when it does not normalise; V3 always scales.
double weight_scale(const ModelConfig& c) {
  bool norm = c.num_experts_per_tok > 1 && c.norm_topk_prob;
  if (c.model_type == ModelType::kDeepseekV2) return norm ? 1.0 : c.routed_scaling_factor;
  return c.routed_scaling_factor;
}

}  // namespace

void moe_select(const ModelConfig& c, const float* scores, const float* bias, int32_t* topk) {
  select_impl(c, scores, bias, topk);
}
void moe_select(const ModelConfig& c, const double* scores, const double* bias, int32_t* topk) {
  select_impl(c, scores, bias, topk);
}

namespace {

// Router scores (softmax or sigmoid of x W_gate^T), the selected experts (or the replayed ones)
// and their combine weights, per token.
template <typename T>
void route(const ModelConfig& c, const MoeP& p, const T* params, const T* x, int64_t n,
           MoeActs<T>& a, const int32_t* forced_topk, bool rowstable) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok, d = c.hidden_size;
  const bool norm = normalises<T>(c);
  const double scale = weight_scale(c);
  a.scores.resize(n * E);
  if (rowstable) {
    gemm_xwt_rowstable(x, params + p.gate.w, static_cast<const T*>(nullptr), a.scores.data(), n,
                       d, E);
  } else {
    gemm_xwt(x, params + p.gate.w, static_cast<const T*>(nullptr), a.scores.data(), n, d, E);
  }
  a.topk.resize(n * K);
  a.weights.resize(n * K);
  const T* bias = p.e_bias == kNoParam ? nullptr : params + p.e_bias;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 4), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t t = r.begin(); t < r.end(); ++t) {
      T* s = a.scores.data() + t * E;
      if (c.scoring_func == ScoreFunc::kSoftmax) {
        T mx = *std::max_element(s, s + E), sum = 0;
        for (int e = 0; e < E; ++e) sum += (s[e] = std::exp(s[e] - mx));
        for (int e = 0; e < E; ++e) s[e] /= sum;
      } else {
        for (int e = 0; e < E; ++e) s[e] = T(1) / (T(1) + std::exp(-s[e]));
      }
      int32_t* tk = a.topk.data() + t * K;
      if (forced_topk != nullptr && forced_topk[t * K] >= 0) {
        std::copy_n(forced_topk + t * K, K, tk);
        for (int k = 0; k < K; ++k) {
          AHA_CHECK(tk[k] >= 0 && tk[k] < E, "replayed expert id ", tk[k], " of ", E);
          for (int j = 0; j < k; ++j) AHA_CHECK(tk[j] != tk[k], "replayed expert twice");
        }
      } else {
        select_impl(c, s, bias, tk);
      }
      T* w = a.weights.data() + t * K;
      T sum = 0;
      for (int k = 0; k < K; ++k) sum += (w[k] = s[tk[k]]);
      for (int k = 0; k < K; ++k) {
        if (norm) w[k] /= (sum + T(1e-20));
        w[k] *= static_cast<T>(scale);
      }
    }
  });
}

// For every (token, k) slot, its row in its expert's gathered batch.
template <typename T>
std::vector<int32_t> expert_rows(const MoeActs<T>& a, int64_t n, int K) {
  std::vector<int32_t> row_of(n * K);
  for (const auto& slots : a.slots) {
    for (size_t r = 0; r < slots.size(); ++r) row_of[slots[r]] = static_cast<int32_t>(r);
  }
  return row_of;
}

// d loss / d router logits of token t from the gradients of its combine weights dw [K].
template <typename T>
void router_logit_grad(const ModelConfig& c, const T* s, const int32_t* tk, const T* dw, T* ds,
                       T* dl) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  const T scale = static_cast<T>(weight_scale(c));
  std::fill(ds, ds + E, T(0));
  if (normalises<T>(c)) {
    T sum = 0, dot = 0;
    for (int k = 0; k < K; ++k) sum += s[tk[k]];
    sum += T(1e-20);
    for (int k = 0; k < K; ++k) dot += dw[k] * s[tk[k]];
    for (int k = 0; k < K; ++k) ds[tk[k]] += scale * (dw[k] / sum - dot / (sum * sum));
  } else {
    for (int k = 0; k < K; ++k) ds[tk[k]] += scale * dw[k];
  }
  if (c.scoring_func == ScoreFunc::kSoftmax) {
    T dot = 0;
    for (int e = 0; e < E; ++e) dot += ds[e] * s[e];
    for (int e = 0; e < E; ++e) dl[e] = s[e] * (ds[e] - dot);
  } else {
    for (int e = 0; e < E; ++e) dl[e] = ds[e] * s[e] * (T(1) - s[e]);
  }
}

// Each expert's gradients are its own; its input gradient is written (not zeroed and added to)
// into a private buffer dxe[e].
template <typename T>
void local_experts_backward(const ModelConfig& c, const MoeP& p, const T* params, T* grads,
                            const T* dy, const MoeActs<T>& a, std::vector<ScratchBuf<T>>& dxe) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok, d = c.hidden_size;
  tbb::parallel_for(0, E, [&](int e) {
    const auto& slots = a.slots[e];
    const int64_t m = static_cast<int64_t>(slots.size());
    if (m == 0) return;
    ScratchBuf<T> dye(static_cast<size_t>(m * d));  // written in full below
    for (int64_t r = 0; r < m; ++r) {
      T w = a.weights[slots[r]];
      const T* src = dy + (slots[r] / K) * d;
      for (int i = 0; i < d; ++i) dye[r * d + i] = w * src[i];
    }
    resize_for_overwrite(dxe[e], size_t(m * d));
    gemms_of_loop_task(E, [&] {
      mlp_backward(p.experts[e], params, grads, a.xin[e].data(), dye.data(), dxe[e].data(), m,
                   a.expert_acts[e], true);
    });
  });
}

// The experts of this rank, one task each, on their gathered rows. In decode (row-stable
// products) `shared` is set and the shared expert is one more task of the loop, the first as the
// largest: after it, its few-microsecond products split by columns scaled 1.35x on two threads.
template <typename T>
void local_experts_forward(const ModelConfig& c, const MoeP& p, const T* params, const T* x,
                           int64_t n, MoeActs<T>& a, bool rowstable, ScratchBuf<T>* shared) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok, d = c.hidden_size;
  a.xin.resize(E);
  a.out.resize(E);
  a.expert_acts.resize(E);
  const int first = shared != nullptr ? 1 : 0;
  tbb::parallel_for(0, E + first, [&](int task) {
    if (task < first) {
      resize_for_overwrite(*shared, n * d);
      mlp_forward(p.shared, params, x, shared->data(), n, a.shared_acts, false, true);
      return;
    }
    const int e = task - first;
    const auto& slots = a.slots[e];
    const int64_t m = static_cast<int64_t>(slots.size());
    resize_for_overwrite(a.xin[e], m * d);
    resize_for_overwrite(a.out[e], m * d);
    if (m == 0) return;
    for (int64_t r = 0; r < m; ++r) {
      std::copy_n(x + (slots[r] / K) * d, d, a.xin[e].data() + r * d);
    }
    expert_forward_task(E, rowstable, [&] {
      mlp_forward(p.experts[e], params, a.xin[e].data(), a.out[e].data(), m, a.expert_acts[e],
                  false, rowstable);
    });
  });
}

// y = the experts' outputs weighted and summed in (token, k) order, so the sum does not depend
// on scheduling; then + the shared expert's row where the loop made it (as linear_any's
// accumulate would add it).
template <typename T>
void combine_experts(const ModelConfig& c, const MoeActs<T>& a, int64_t n, const T* shared, T* y) {
  const int K = c.num_experts_per_tok, d = c.hidden_size;
  const std::vector<int32_t> row_of = expert_rows(a, n, K);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 16), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t t = r.begin(); t < r.end(); ++t) {
      T* yr = y + t * d;
      std::fill(yr, yr + d, T(0));
      for (int k = 0; k < K; ++k) {
        int e = a.topk[t * K + k];
        const T* o = a.out[e].data() + int64_t{row_of[t * K + k]} * d;
        T w = a.weights[t * K + k];
        for (int i = 0; i < d; ++i) yr[i] += w * o[i];
      }
      if (shared != nullptr) {
        const T* sr = shared + t * d;
        for (int i = 0; i < d; ++i) yr[i] += sr[i];
      }
    }
  });
}

}  // namespace

template <typename T>
void moe_forward(const ModelConfig& c, const MoeP& p, const T* params, const T* x, T* y,
                 const SeqLayout& layout, MoeActs<T>& a, const int32_t* forced_topk,
                 bool rowstable, const ExpertParallel* ep) {
  const int64_t n = layout.n_tokens();
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  if (ep == nullptr && c.ep.sharded) {
    fail("parallel.ep = ", c.ep.size, ": this rank holds only its own experts, so this forward ",
         "(rollouts, scoring or eval of the whole model) cannot run here");
  }
  a.ep = ep != nullptr ? *ep : ExpertParallel{};
  if (n > 0) {
    route(c, p, params, x, n, a, forced_topk, rowstable);
  } else {  // an expert-parallel rank without tokens still serves the others
    a.scores.clear();
    a.topk.clear();
    a.weights.clear();
  }
  a.slots.assign(E, {});
  for (int64_t i = 0; i < n * K; ++i) a.slots[a.topk[i]].push_back(static_cast<int32_t>(i));
  const bool shared_in_loop = rowstable && p.has_shared && n > 0 && !a.ep.on();
  ScratchBuf<T> shared_out;  // written in full by the shared expert
  if (a.ep.on()) {
    ep_experts_forward(c, p, params, x, a, rowstable);
  } else {
    local_experts_forward(c, p, params, x, n, a, rowstable, shared_in_loop ? &shared_out : nullptr);
  }
  device_balance_forward(c, n, a);  // before the return: an idle rank still sends its zeros
  a.aux_loss = 0;
  if (n == 0) return;
  combine_experts(c, a, n, shared_in_loop ? shared_out.data() : nullptr, y);
  if (!shared_in_loop && p.has_shared) {
    mlp_forward(p.shared, params, x, y, n, a.shared_acts, true, rowstable);
  }
  a.aux_loss = balance_loss(c, layout, a);
}

template <typename T>
void moe_backward(const ModelConfig& c, const MoeP& p, const T* params, T* grads, const T* x,
                  const T* dy, T* dx, const SeqLayout& layout, const MoeActs<T>& a,
                  const BalanceWeights& balance) {
  const int64_t n = layout.n_tokens();
  const int E = c.n_routed_experts, K = c.num_experts_per_tok, d = c.hidden_size;
  std::vector<ScratchBuf<T>> dxe(E);
  if (a.ep.on()) {
    ep_experts_backward(c, p, params, grads, dy, a, dxe);
    if (n == 0) return;
  } else {
    local_experts_backward(c, p, params, grads, dy, a, dxe);
  }
  if (p.has_shared) mlp_backward(p.shared, params, grads, x, dy, dx, n, a.shared_acts);
  const std::vector<int32_t> row_of = expert_rows(a, n, K);
  // Per token: the experts' input gradients into dx, the combine weights' into the router.
  Buf<T> dlogits(n * E, T(0));
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 16), [&](const tbb::blocked_range<int64_t>& r) {
    std::vector<T> dw(K), ds(E);
    for (int64_t t = r.begin(); t < r.end(); ++t) {
      T* dxr = dx + t * d;
      const T* dyr = dy + t * d;
      const int32_t* tk = a.topk.data() + t * K;
      for (int k = 0; k < K; ++k) {
        const int64_t row = row_of[t * K + k];
        const T* o = a.out[tk[k]].data() + row * d;
        const T* g = dxe[tk[k]].data() + row * d;
        for (int i = 0; i < d; ++i) dxr[i] += g[i];
        // dot_stable's fixed order vectorises: one chain of d adds waited on the add latency for
        // every token and expert (~2% of a bf16 training step of `small`).
        dw[k] = dot_stable(dyr, o, int64_t{d});
      }
      router_logit_grad(c, a.scores.data() + t * E, tk, dw.data(), ds.data(),
                        dlogits.data() + t * E);
    }
  });
  const double seq_coef = balance.seq * c.aux_loss_alpha;
  if (seq_coef != 0.0) balance_loss_grad(c, layout, a, seq_coef, dlogits.data());
  device_balance_grad(c, n, a, balance.batch, dlogits.data());
  gemm_dyw(dlogits.data(), params + p.gate.w, dx, n, d, E);
  if (!p.gate.frozen) {  // LoRA: the router is part of the frozen base
    gemm_dytx(dlogits.data(), x, grads + p.gate.w, static_cast<T*>(nullptr), n, d, E);
  }
}

#define AHA_INSTANTIATE_MOE(T)                                                                  \
  template void moe_forward<T>(const ModelConfig&, const MoeP&, const T*, const T*, T*,          \
                               const SeqLayout&, MoeActs<T>&, const int32_t*, bool,          \
                               const ExpertParallel*);                                         \
  template void moe_backward<T>(const ModelConfig&, const MoeP&, const T*, T*, const T*,         \
                                const T*, T*, const SeqLayout&, const MoeActs<T>&,          \
                                const BalanceWeights&);

AHA_INSTANTIATE_MOE(float)
AHA_INSTANTIATE_MOE(double)

}  // namespace aha::policy
