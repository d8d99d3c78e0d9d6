// The SwiGLU MLP, forward and backward.
#include "aha/policy/mlp.h"

#include <memory>
#include <optional>

#include "aha/core/tensor.h"
#include "aha/policy/layers.h"
#include "for_chunks.h"
#include "linear.h"

namespace aha::policy {

MlpP add_mlp(ParamTable& t, const std::string& prefix, int d_model, int inter) {
  MlpP p;
  p.gate_proj = add_linear(t, prefix + ".gate_proj", d_model, inter);
  p.up_proj = add_linear(t, prefix + ".up_proj", d_model, inter);
  p.down_proj = add_linear(t, prefix + ".down_proj", inter, d_model);
  return p;
}

namespace {

// gate_proj and up_proj as one linear layer [2 inter, d], when their weights lie back to back
// (add_mlp adds them in that order: true of every dense MLP and expert) and neither has a bias or
// an adapter. One product packs x once for both; each output is the same chain over x's row as
// in a product of its own (whichever columns share a call), and the backward's dx is one product
// over both halves of the gradient, where two products added one into the other.
std::optional<LinearP> gate_up(const MlpP& p) {
  const LinearP &g = p.gate_proj, &u = p.up_proj;
  const bool plain = g.b == kNoParam && u.b == kNoParam && g.lora_a == kNoParam &&
                     u.lora_a == kNoParam && g.frozen == u.frozen && g.n_in == u.n_in &&
                     g.n_out == u.n_out;
  if (!plain || u.w != g.w + size_t(g.n_out) * size_t(g.n_in)) return std::nullopt;
  LinearP both = g;
  both.n_out = 2 * g.n_out;
  return both;
}

// Where g and u start in MlpActs::gu and their row stride (see mlp.h).
struct GateUpLayout {
  int64_t u_offset, ld;
};
GateUpLayout gate_up_layout(bool fused, int64_t n, int inter) {
  return fused ? GateUpLayout{inter, 2 * int64_t{inter}} : GateUpLayout{n * inter, inter};
}

}  // namespace

template <typename T>
void mlp_forward(const MlpP& p, const T* params, const T* x, T* y, int64_t n, MlpActs<T>& a,
                 bool accumulate, bool rowstable) {
  const int inter = p.gate_proj.n_out;
  const std::optional<LinearP> both = gate_up(p);
  const GateUpLayout at = gate_up_layout(both.has_value(), n, inter);
  resize_for_overwrite(a.gu, 2 * n * inter);
  resize_for_overwrite(a.a, n * inter);
  T* g = a.gu.data();
  if (both) {
    linear_any(*both, params, x, g, n, false, rowstable);
  } else {
    linear_any(p.gate_proj, params, x, g, n, false, rowstable);
    linear_any(p.up_proj, params, x, g + at.u_offset, n, false, rowstable);
  }
  swiglu_forward(g, g + at.u_offset, at.ld, a.a.data(), n, inter);
  linear_any(p.down_proj, params, a.a.data(), y, n, accumulate, rowstable);
}

template <typename T>
void mlp_backward(const MlpP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                  int64_t n, const MlpActs<T>& a, bool dx_fresh) {
  const int inter = p.gate_proj.n_out;
  const std::optional<LinearP> both = gate_up(p);
  const GateUpLayout at = gate_up_layout(both.has_value(), n, inter);
  // Written in full by the down projection's product and by swiglu_backward: no zeroing.
  ScratchBuf<T> da(static_cast<size_t>(n * inter));
  std::unique_ptr<T[]> dgu(new T[2 * n * inter]);
  linear_backward(p.down_proj, params, grads, a.a.data(), dy, da.data(), n, true);
  const T* g = a.gu.data();
  swiglu_backward(da.data(), g, g + at.u_offset, at.ld, dgu.get(), dgu.get() + at.u_offset, n,
                  inter);
  if (both) {
    linear_backward(*both, params, grads, x, dgu.get(), dx, n, dx_fresh);
    return;
  }
  linear_backward(p.gate_proj, params, grads, x, dgu.get(), dx, n, dx_fresh);
  linear_backward(p.up_proj, params, grads, x, dgu.get() + at.u_offset, dx, n);
}

#define AHA_INSTANTIATE_MLP(T)                                                                  \
  template void mlp_forward<T>(const MlpP&, const T*, const T*, T*, int64_t, MlpActs<T>&, bool,  \
                               bool);                                                           \
  template void mlp_backward<T>(const MlpP&, const T*, T*, const T*, const T*, T*, int64_t,      \
                                const MlpActs<T>&, bool);

AHA_INSTANTIATE_MLP(float)
AHA_INSTANTIATE_MLP(double)

}  // namespace aha::policy
