// The decoder's blocks: MLA attention (DeepSeek-V2/V3), GQA attention (Llama/Qwen2), the SwiGLU
// MLP and DeepSeekMoE. Each has a parameter struct (offsets into the model's parameter block),
// an activation struct (what its backward needs) and a forward/backward pair. Backward adds
// into dx and into the gradient block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/policy/layers.h"
#include "aha/policy/model_config.h"
#include "aha/policy/params.h"

namespace aha::policy {

// Token layout of a packed batch: sequence boundaries and the position of every token.
struct SeqLayout {
  std::vector<int64_t> seq_starts;  // [n_seqs + 1]
  std::vector<int32_t> positions;   // [n_tokens]
  int64_t n_tokens() const { return seq_starts.empty() ? 0 : seq_starts.back(); }
};

template <typename T>
using Buf = std::vector<T>;

// ---- MLA ----
struct MlaP {
  LinearP q_proj;  // used when q_lora_rank is null
  LinearP q_a_proj, q_b_proj;
  NormP q_a_norm;
  LinearP kv_a_proj;  // [kv_lora_rank + qk_rope_head_dim, d_model]
  NormP kv_a_norm;
  LinearP kv_b_proj;  // [n_heads * (qk_nope_head_dim + v_head_dim), kv_lora_rank]
  LinearP o_proj;
};
MlaP add_mla(ParamTable& t, const std::string& prefix, const ModelConfig& c);

template <typename T>
struct MlaActs {
  Buf<T> qa, qa_rstd, qan;  // [n, q_lora_rank] (q low-rank path only)
  Buf<T> kva;               // [n, kv_lora_rank + rope_dim] (k_pe part before RoPE)
  Buf<T> kv_rstd, kvn;      // [n], [n, kv_lora_rank]
  Buf<T> q, k, v;           // [n, H, qk_head_dim] (after RoPE), same, [n, H, v_head_dim]
  Buf<T> o, lse;            // [n, H * v_head_dim], [H, n]
};

template <typename T>
void mla_forward(const ModelConfig& c, const MlaP& p, const RopeTable& rope, const T* params,
                 const T* x, T* y, const SeqLayout& layout, MlaActs<T>& a);
template <typename T>
void mla_backward(const ModelConfig& c, const MlaP& p, const RopeTable& rope, const T* params,
                  T* grads, const T* x, const T* dy, T* dx, const SeqLayout& layout,
                  const MlaActs<T>& a);

// ---- GQA ----
struct GqaP {
  LinearP q_proj, k_proj, v_proj, o_proj;
};
GqaP add_gqa(ParamTable& t, const std::string& prefix, const ModelConfig& c);

template <typename T>
struct GqaActs {
  Buf<T> q, k, v;  // after RoPE: [n, Hq, hd], [n, Hk, hd], [n, Hk, hd]
  Buf<T> o, lse;
};

template <typename T>
void gqa_forward(const ModelConfig& c, const GqaP& p, const RopeTable& rope, const T* params,
                 const T* x, T* y, const SeqLayout& layout, GqaActs<T>& a);
template <typename T>
void gqa_backward(const ModelConfig& c, const GqaP& p, const RopeTable& rope, const T* params,
                  T* grads, const T* x, const T* dy, T* dx, const SeqLayout& layout,
                  const GqaActs<T>& a);

// ---- SwiGLU MLP: y = down(silu(gate(x)) * up(x)) ----
struct MlpP {
  LinearP gate_proj, up_proj, down_proj;
};
MlpP add_mlp(ParamTable& t, const std::string& prefix, int d_model, int inter);

template <typename T>
struct MlpActs {
  Buf<T> g, u, a;  // [n, inter]
};

// y is written, or added to when accumulate is set. rowstable: use the batch-invariant GEMM
// (decode path), so a token's output does not depend on the other tokens in the batch.
template <typename T>
void mlp_forward(const MlpP& p, const T* params, const T* x, T* y, int64_t n, MlpActs<T>& a,
                 bool accumulate = false, bool rowstable = false);
template <typename T>
void mlp_backward(const MlpP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                  int64_t n, const MlpActs<T>& a);

// ---- DeepSeekMoE ----
struct MoeP {
  LinearP gate;               // router [n_routed_experts, d_model], no bias
  size_t e_bias = kNoParam;   // e_score_correction_bias [n_routed_experts] (noaux_tc only)
  std::vector<MlpP> experts;  // routed experts
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
  std::vector<Buf<T>> xin, out;                // per expert: gathered inputs, outputs [m_e, d]
  std::vector<MlpActs<T>> expert_acts;
  MlpActs<T> shared_acts;
  double aux_loss = 0;                         // sequence-wise balance loss (unweighted)
};

// forced_topk: replay the selection recorded at sampling ([n, K]) instead of routing afresh
// (nullptr: route every token afresh); a token whose first entry is -1 is routed afresh.
// rowstable: the batch-invariant kernels of the decode path.
template <typename T>
void moe_forward(const ModelConfig& c, const MoeP& p, const T* params, const T* x, T* y,
                 const SeqLayout& layout, MoeActs<T>& a, const int32_t* forced_topk,
                 bool rowstable);
// aux_coef: weight of the balance loss in the objective being differentiated (0: ignore it).
template <typename T>
void moe_backward(const ModelConfig& c, const MoeP& p, const T* params, T* grads, const T* x,
                  const T* dy, T* dx, const SeqLayout& layout, const MoeActs<T>& a,
                  double aux_coef);

// Expert selection for one token from its scores (exposed for tests and the decode path).
void moe_select(const ModelConfig& c, const float* scores, const float* bias, int32_t* topk);
void moe_select(const ModelConfig& c, const double* scores, const double* bias, int32_t* topk);

}  // namespace aha::policy
