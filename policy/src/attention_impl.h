// What the attention kinds share (internal to the policy module): the linear projections
// (linear.h), the batch-invariant softmax of the decode path, and the adapter that routes the
// float and double overloads of the Attention interface to one template per kind.
#pragma once

#include <cstdint>

#include "aha/core/tensor.h"
#include "aha/policy/attention.h"
#include "linear.h"  // linear_forward, linear_stable, linear_backward (with LoRA)

namespace aha::policy {

// Row-wise softmax of s [n_rows, n] in place after multiplying by `scale`. The same operations
// for a row whatever the other rows, so it keeps the decode batch invariant.
void scaled_softmax_rows(float* s, int64_t n_rows, int64_t n, float scale);

// A kind implements template <T> fwd(P, x, y, layout, a) and bwd(P, G, x, dy, dx, layout, a);
// this turns them into the interface's float and double overloads.
template <class Kind>
class AttentionImpl : public Attention {
 public:
  void forward(const float* P, const float* x, float* y, const SeqLayout& layout,
               AttnActs<float>& a) const override {
    self().fwd(P, x, y, layout, a);
  }
  void forward(const double* P, const double* x, double* y, const SeqLayout& layout,
               AttnActs<double>& a) const override {
    self().fwd(P, x, y, layout, a);
  }
  void backward(const float* P, float* G, const float* x, const float* dy, float* dx,
                const SeqLayout& layout, const AttnActs<float>& a) const override {
    self().bwd(P, G, x, dy, dx, layout, a);
  }
  void backward(const double* P, double* G, const double* x, const double* dy, double* dx,
                const SeqLayout& layout, const AttnActs<double>& a) const override {
    self().bwd(P, G, x, dy, dx, layout, a);
  }

 private:
  const Kind& self() const { return static_cast<const Kind&>(*this); }
};

// Factories of the kinds (attention.cpp picks one per layer).
std::unique_ptr<Attention> make_mla(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope);
std::unique_ptr<Attention> make_gqa(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope, int64_t window);
std::unique_ptr<Attention> make_nsa(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope, NsaOptions o);
std::unique_ptr<Attention> make_dsa(ParamTable& t, const std::string& prefix,
                                    const ModelConfig& c, const RopeTable& rope);

}  // namespace aha::policy
