// The SwiGLU MLP, forward and backward.
#include "aha/policy/mlp.h"

#include "aha/core/tensor.h"
#include "aha/policy/layers.h"

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
  const int d = p.gate_proj.n_in, inter = p.gate_proj.n_out;
  const T* none = nullptr;
  a.g.resize(n * inter);
  a.u.resize(n * inter);
  a.a.resize(n * inter);
  if (rowstable) {
    gemm_xwt_rowstable(x, params + p.gate_proj.w, none, a.g.data(), n, d, inter);
    gemm_xwt_rowstable(x, params + p.up_proj.w, none, a.u.data(), n, d, inter);
  } else {
    gemm_xwt(x, params + p.gate_proj.w, none, a.g.data(), n, d, inter);
    gemm_xwt(x, params + p.up_proj.w, none, a.u.data(), n, d, inter);
  }
  swiglu_forward(a.g.data(), a.u.data(), a.a.data(), n, inter);
  if (!rowstable) {
    gemm_xwt(a.a.data(), params + p.down_proj.w, none, y, n, inter, d, accumulate);
    return;
  }
  if (!accumulate) {
    gemm_xwt_rowstable(a.a.data(), params + p.down_proj.w, none, y, n, inter, d);
    return;
  }
  Buf<T> tmp(n * d);
  gemm_xwt_rowstable(a.a.data(), params + p.down_proj.w, none, tmp.data(), n, inter, d);
  for (int64_t i = 0; i < n * d; ++i) y[i] += tmp[i];
}

template <typename T>
void mlp_backward(const MlpP& p, const T* params, T* grads, const T* x, const T* dy, T* dx,
                  int64_t n, const MlpActs<T>& a) {
  const int d = p.gate_proj.n_in, inter = p.gate_proj.n_out;
  Buf<T> da(n * inter, T(0)), dg(n * inter), du(n * inter);
  gemm_dyw(dy, params + p.down_proj.w, da.data(), n, inter, d);
  gemm_dytx(dy, a.a.data(), grads + p.down_proj.w, static_cast<T*>(nullptr), n, inter, d);
  swiglu_backward(da.data(), a.g.data(), a.u.data(), dg.data(), du.data(), n, inter);
  gemm_dyw(dg.data(), params + p.gate_proj.w, dx, n, d, inter);
  gemm_dyw(du.data(), params + p.up_proj.w, dx, n, d, inter);
  gemm_dytx(dg.data(), x, grads + p.gate_proj.w, static_cast<T*>(nullptr), n, d, inter);
  gemm_dytx(du.data(), x, grads + p.up_proj.w, static_cast<T*>(nullptr), n, d, inter);
}

#define AHA_INSTANTIATE_MLP(T)                                                                  \
  template void mlp_forward<T>(const MlpP&, const T*, const T*, T*, int64_t, MlpActs<T>&, bool,  \
                               bool);                                                           \
  template void mlp_backward<T>(const MlpP&, const T*, T*, const T*, const T*, T*, int64_t,      \
                                const MlpActs<T>&);

AHA_INSTANTIATE_MLP(float)
AHA_INSTANTIATE_MLP(double)

}  // namespace aha::policy
