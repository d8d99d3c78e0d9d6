// DeepSeekMoE: router, expert selection (greedy, group-limited, noaux_tc), routed and shared
// experts, the balance losses; forward and backward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/policy/mlp.h"
#include "aha/policy/model_config.h"

namespace aha::policy {

struct MoeP {
  LinearP gate;               // router [n_routed_experts, d_model], no bias
  size_t e_bias = kNoParam;   // e_score_correction_bias [n_routed_experts] (noaux_tc only)
  std::vector<MlpP> experts;  // routed experts; unallocated (kNoParam) where !c.ep.holds(e)
  bool has_shared = false;
  MlpP shared;                // shared experts fused into one MLP (as in HF checkpoints)
};
MoeP add_moe(ParamTable& t, const std::string& prefix, const ModelConfig& c);

template <typename T>
struct MoeActs {
  Buf<T> scores;                               // [n, E] softmax or sigmoid of router logits
  std::vector<int32_t> topk;                   // [n, K] selected experts
  Buf<T> weights;                              // [n, K] combine weights
  std::vector<std::vector<int32_t>> slots;     // per expert: t * K + k of its tokens, ascending
  std::vector<ScratchBuf<T>> xin, out;         // per expert: gathered inputs, outputs [m_e, d]
  std::vector<MlpActs<T>> expert_acts;
  // Expert parallel: out[e] holds this rank's rows of every expert (sent back by its owner);
  // xin and expert_acts only the local experts', over the rows every rank sent, in rank order.
  ExpertParallel ep;                           // the forward's sharding; backward mirrors it
  std::vector<int64_t> ep_recv;                // [size, n_local]: rows rank s sent expert j
  std::vector<int64_t> ep_recv_rows;           // [size]: distinct tokens rank s sent here
  std::vector<double> ep_routes;               // per token received: its experts here, weights
  MlpActs<T> shared_acts;
  double aux_loss = 0;                         // sequence-wise balance loss (unweighted)
  // DeepSeek-V2's device-level and communication balance losses (unweighted), over every
  // token of the forward, every expert-parallel rank's included (moe_balance.cpp).
  double device_loss = 0, comm_loss = 0;
  // [E] d(device_balance_alpha * device_loss + comm_balance_alpha * comm_loss) / d (a token's
  // normalised score of expert j): the same for every token; empty when both alphas are 0.
  std::vector<double> device_score_grad;
};

// Weights of the balance losses in the objective a backward differentiates (each also times
// its alpha from the config). seq: the sequence-wise loss, whose mean is over this rank's
// sequences, so a data-parallel caller passes its share; batch: the device-level and
// communication losses, whose statistics are already global, so every rank passes the whole
// weight.
struct BalanceWeights {
  double seq = 0;
  double batch = 0;
};

// forced_topk: replay the selection recorded at sampling ([n, K]) instead of routing afresh
// (nullptr: route every token afresh); a token whose first entry is -1 is routed afresh.
// rowstable: the batch-invariant kernels of the decode path.
// ep: run the routed experts sharded over the ranks (every rank must call, in the same layer
// order, with any number of tokens, zero included); nullptr: every expert here.
template <typename T>
void moe_forward(const ModelConfig& c, const MoeP& p, const T* params, const T* x, T* y,
                 const SeqLayout& layout, MoeActs<T>& a, const int32_t* forced_topk,
                 bool rowstable, const ExpertParallel* ep);
template <typename T>
void moe_backward(const ModelConfig& c, const MoeP& p, const T* params, T* grads, const T* x,
                  const T* dy, T* dx, const SeqLayout& layout, const MoeActs<T>& a,
                  const BalanceWeights& balance);

// Expert selection for one token from its scores (exposed for tests and the decode path).
void moe_select(const ModelConfig& c, const float* scores, const float* bias, int32_t* topk);
void moe_select(const ModelConfig& c, const double* scores, const double* bias, int32_t* topk);

}  // namespace aha::policy
