// The dense SwiGLU MLP (Llama/Qwen2 and DeepSeek's dense layers and experts), forward and
// backward. Backward adds into dx and into the gradient block.
#pragma once

#include <cstdint>
#include <string>

#include "aha/policy/params.h"
#include "aha/policy/seq_layout.h"

namespace aha::policy {

// ---- SwiGLU MLP: y = down(silu(gate(x)) * up(x)) ----
struct MlpP {
  LinearP gate_proj, up_proj, down_proj;
};
MlpP add_mlp(ParamTable& t, const std::string& prefix, int d_model, int inter);

// gu holds the gate's and the up projection's outputs: each row [g | u] ([n, 2 inter]) when
// they ran as one product, else all of g [n, inter] then all of u (mlp.cpp, gate_up). a [n, inter]
// is silu(g) * u. All are written in full by the forward.
template <typename T>
struct MlpActs {
  ScratchBuf<T> gu, a;
};

// y is written, or added to when accumulate is set. rowstable: use the batch-invariant GEMM
// (decode path), so a token's output does not depend on the other tokens in the batch.
template <typename T>
void mlp_forward(const MlpP& p, const T* params, const T* x, T* y, int64_t n, MlpActs<T>& a,
                 bool accumulate = false, bool rowstable = false);
// dx is added to, or written (not read, needing no zeroing) when dx_fresh.
template <typename T>
void mlp_backward(const MlpP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                  int64_t n, const MlpActs<T>& a, bool dx_fresh = false);

}  // namespace aha::policy
