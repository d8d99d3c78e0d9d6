// The SwiGLU MLP, forward and backward.
#include "aha/policy/mlp.h"

#include <memory>

#include "aha/core/tensor.h"
#include "aha/policy/layers.h"
#include "linear.h"

namespace aha::policy {

MlpP add_mlp(ParamTable& t, const std::string& prefix, int d_model, int inter) {
  MlpP p;
  p.gate_proj = add_linear(t, prefix + ".gate_proj", d_model, inter);
  p.up_proj = add_linear(t, prefix + ".up_proj", d_model, inter);
  p.down_proj = add_linear(t, prefix + ".down_proj", inter, d_model);
  return p;
}

template <typename T>
void mlp_forward(const MlpP& p, const T* params, const T* x, T* y, int64_t n, MlpActs<T>& a,
                 bool accumulate, bool rowstable) {
  const int inter = p.gate_proj.n_out;
  resize_for_overwrite(a.g, n * inter);
  resize_for_overwrite(a.u, n * inter);
  resize_for_overwrite(a.a, n * inter);
  linear_any(p.gate_proj, params, x, a.g.data(), n, false, rowstable);
  linear_any(p.up_proj, params, x, a.u.data(), n, false, rowstable);
  swiglu_forward(a.g.data(), a.u.data(), a.a.data(), n, inter);
  linear_any(p.down_proj, params, a.a.data(), y, n, accumulate, rowstable);
}

template <typename T>
void mlp_backward(const MlpP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                  int64_t n, const MlpActs<T>& a) {
  const int inter = p.gate_proj.n_out;
  Buf<T> da(n * inter, T(0));  // accumulated into
  // Written in full by swiglu_backward: no zeroing.
  std::unique_ptr<T[]> dg(new T[n * inter]), du(new T[n * inter]);
  linear_backward(p.down_proj, params, grads, a.a.data(), dy, da.data(), n);
  swiglu_backward(da.data(), a.g.data(), a.u.data(), dg.get(), du.get(), n, inter);
  linear_backward(p.gate_proj, params, grads, x, dg.get(), dx, n);
  linear_backward(p.up_proj, params, grads, x, du.get(), dx, n);
}

#define AHA_INSTANTIATE_MLP(T)                                                                  \
  template void mlp_forward<T>(const MlpP&, const T*, const T*, T*, int64_t, MlpActs<T>&, bool,  \
                               bool);                                                           \
  template void mlp_backward<T>(const MlpP&, const T*, T*, const T*, const T*, T*, int64_t,      \
                                const MlpActs<T>&);

AHA_INSTANTIATE_MLP(float)
AHA_INSTANTIATE_MLP(double)

}  // namespace aha::policy
