// What the attention kinds share (internal to the policy module): the linear projections
// (linear.h), the batch-invariant softmax of the decode path, and the adapter that routes the
// float and double overloads of the Attention interface to one template per kind.
#pragma once

#include <cstdint>
#include <functional>

#include "aha/core/tensor.h"
#include "aha/policy/attention.h"
#include "linear.h"  // linear_forward, linear_stable, linear_backward (with LoRA)

namespace aha::policy {

// Row-wise softmax of s [n_rows, n] in place after multiplying by `scale`. The same operations
// for a row whatever the other rows, so it keeps the decode batch invariant.
void scaled_softmax_rows(float* s, int64_t n_rows, int64_t n, float scale);
// The same over rows ld values apart, row i over its first n0 + i * step values (a prefill's
// causal rows: step 1), the rest of each row untouched.
void scaled_softmax_rows(float* s, int64_t n_rows, int64_t ld, int64_t n0, int64_t step,
                         float scale);

// Runs fn(block, b0) on blocks of a decode step's rows (b0: the block's first row), one block per
// core, each block's products on its own thread; false, with nothing run, when the step is a
// prefill, carries selections, is under 16 rows or runs on one thread. At a batch of tens of rows
// a projection split by columns is tasks of a few microseconds whose fork and join cost as much
// (MLA's query projections ran 1.1x faster on two threads than on one). Every row's values
// depend on that row alone, so blocks give the bits of the whole step. The rows of one cache
// (consecutive positions of a speculative step) stay in one block; a cache that two blocks would
// share (resized from two threads) keeps the step whole.
bool decode_row_blocks(const DecodeStep& step,
                       const std::function<void(const DecodeStep&, int64_t)>& fn);

// A kind implements template <T> fwd(P, x, y, layout, a) and bwd(P, G, x, dy, dx, layout, a);
// this turns them into the interface's float and double overloads. It also implements
// decode_rows(P, h, y, step), which this runs on blocks of the step's rows where
// decode_row_blocks splits it, on the whole step otherwise.
template <class Kind>
class AttentionImpl : public Attention {
 public:
  explicit AttentionImpl(const ModelConfig& c) : d_model_(c.hidden_size) {}

  void decode(const float* P, const float* h, float* y, const DecodeStep& step) const override {
    const int64_t d = d_model_;
    const bool split = decode_row_blocks(step, [&](const DecodeStep& block, int64_t b0) {
      self().decode_rows(P, h + b0 * d, y + b0 * d, block);
    });
    if (!split) self().decode_rows(P, h, y, step);
  }

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
  int64_t d_model_;
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
