// The multi-token prediction module's loss, forward and backward.
#include "aha/policy/mtp.h"

#include <algorithm>

#include "aha/core/error.h"
#include "aha/policy/model.h"
#include "attention_impl.h"

namespace aha::policy {

namespace {

MtpModuleP add_module(ParamTable& t, const ModelConfig& c, const RopeTable& rope, int layer) {
  const int d = c.hidden_size;
  const std::string pre = "model.layers." + std::to_string(layer);
  MtpModuleP p;
  p.embed = t.add(pre + ".embed_tokens.weight", {c.vocab_size, d});
  p.enorm = add_norm(t, pre + ".enorm.weight", d);
  p.hnorm = add_norm(t, pre + ".hnorm.weight", d);
  p.eh_proj = add_linear(t, pre + ".eh_proj", 2 * d, d);
  p.block = add_block(t, c, rope, layer);
  p.head_norm = add_norm(t, pre + ".shared_head.norm.weight", d);
  p.head = t.add(pre + ".shared_head.head.weight", {c.vocab_size, d});
  return p;
}

// Depth k's rows: main row i of every sequence with t_{i+k} in it, reading token t_{i+k} and
// predicting t_{i+k+1}; h comes from main row i (k = 1) or from the same (sequence, i) row of
// depth k - 1, whose layout is prev.
template <typename T>
void module_rows(const Activations<T>& acts, int k, const SeqLayout* prev, MtpActs<T>& m) {
  m.layout = {};
  m.layout.seq_starts = {0};
  m.inputs.clear();
  m.targets.clear();
  m.src.clear();
  m.main_row.clear();
  const auto& starts = acts.layout.seq_starts;
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    const int64_t t0 = starts[s], len = starts[s + 1] - t0;
    for (int64_t i = 0; i + k < len; ++i) {
      m.main_row.push_back(t0 + i);
      m.src.push_back(prev == nullptr ? t0 + i : prev->seq_starts[s] + i);
      m.inputs.push_back(acts.tokens[t0 + i + k]);
      m.targets.push_back(i + k + 1 < len ? acts.tokens[t0 + i + k + 1] : -1);
      m.layout.positions.push_back(static_cast<int32_t>(i));
    }
    m.layout.seq_starts.push_back(static_cast<int64_t>(m.src.size()));
  }
}

// The module's input rows, shared by training and drafting: a = [RMSNorm(embedding of the
// next token) ; RMSNorm(h)], the embedding half first. e_in receives the gathered embeddings.
template <typename T>
void module_input(const ModelConfig& c, const MtpModuleP& p, const T* P, const int32_t* tokens,
                  int64_t n, T* e_in, T* e_h, T* e_rstd, const T* h_in, T* h_h, T* h_rstd,
                  T* a) {
  const int d = c.hidden_size;
  for (int64_t r = 0; r < n; ++r) {
    std::copy_n(P + p.embed + int64_t{tokens[r]} * d, d, e_in + r * d);
  }
  rmsnorm_forward(e_in, P + p.enorm.w, e_h, e_rstd, n, d, c.rms_norm_eps);
  rmsnorm_forward(h_in, P + p.hnorm.w, h_h, h_rstd, n, d, c.rms_norm_eps);
  for (int64_t r = 0; r < n; ++r) {
    std::copy_n(e_h + r * d, d, a + r * 2 * d);
    std::copy_n(h_h + r * d, d, a + r * 2 * d + d);
  }
}

// One module over its rows, h read from H's rows src[r] ([*, d]).
template <typename T>
void module_forward(const ModelConfig& c, const MtpModuleP& p, const T* P, const T* H,
                    MtpActs<T>& m) {
  const int d = c.hidden_size;
  const int64_t n = static_cast<int64_t>(m.src.size());
  m.e_in.resize(n * d);
  m.h_in.resize(n * d);
  for (int64_t r = 0; r < n; ++r) std::copy_n(H + m.src[r] * d, d, m.h_in.data() + r * d);
  m.e_h.resize(n * d);
  m.e_rstd.resize(n);
  m.h_h.resize(n * d);
  m.h_rstd.resize(n);
  m.x_out.resize(n * d);
  m.hn.resize(n * d);
  m.hn_rstd.resize(n);
  m.logprob.resize(n);
  m.lse.resize(n);
  if (n == 0) return;
  m.a.resize(n * 2 * d);
  module_input(c, p, P, m.inputs.data(), n, m.e_in.data(), m.e_h.data(), m.e_rstd.data(),
               m.h_in.data(), m.h_h.data(), m.h_rstd.data(), m.a.data());
  linear_forward(p.eh_proj, P, m.a.data(), m.x_out.data(), n);
  BlockPass pass;
  pass.layout = &m.layout;
  block_forward(c, p.block, P, m.x_out.data(), m.la, pass);
  rmsnorm_forward(m.x_out.data(), P + p.head_norm.w, m.hn.data(), m.hn_rstd.data(), n, d,
                  c.rms_norm_eps);
  logprob_forward(m.hn.data(), P + p.head, m.targets.data(), m.logprob.data(),
                  static_cast<T*>(nullptr), m.lse.data(), n, d, c.vocab_size, 1.0,
                  static_cast<const KeptSets*>(nullptr));
}

// coef: d loss / d logprob of every row with a target is -coef. dx_extra (optional): the
// gradient reaching x_out from the next depth. dh_target: where d/dh goes (rows src[r]).
template <typename T>
void module_backward(const ModelConfig& c, const MtpModuleP& p, const T* P, T* G,
                     const MtpActs<T>& m, double coef, const T* dx_extra, T* dh_target) {
  const int d = c.hidden_size;
  const int64_t n = static_cast<int64_t>(m.src.size());
  if (n == 0) return;
  Buf<T> dlogprob(n, T(0));
  for (int64_t r = 0; r < n; ++r) {
    if (m.targets[r] >= 0) dlogprob[r] = static_cast<T>(-coef);
  }
  Buf<T> dhn(n * d, T(0)), dx(n * d, T(0));
  logprob_backward(dlogprob.data(), static_cast<const T*>(nullptr), m.hn.data(), P + p.head,
                   m.targets.data(), m.lse.data(), dhn.data(), G + p.head, n, d, c.vocab_size,
                   1.0, static_cast<const KeptSets*>(nullptr));
  rmsnorm_backward(dhn.data(), m.x_out.data(), P + p.head_norm.w, m.hn_rstd.data(), dx.data(),
                   G + p.head_norm.w, n, d);
  if (dx_extra != nullptr) {
    for (int64_t i = 0; i < n * d; ++i) dx[i] += dx_extra[i];
  }
  block_backward(c, p.block, P, G, m.la, m.layout, dx.data(), BalanceWeights{});
  Buf<T> da(n * 2 * d, T(0));
  linear_backward(p.eh_proj, P, G, m.a.data(), dx.data(), da.data(), n);
  Buf<T> de(n * d), dh(n * d), de_in(n * d, T(0)), dh_in(n * d, T(0));
  for (int64_t r = 0; r < n; ++r) {
    std::copy_n(da.data() + r * 2 * d, d, de.data() + r * d);
    std::copy_n(da.data() + r * 2 * d + d, d, dh.data() + r * d);
  }
  rmsnorm_backward(de.data(), m.e_in.data(), P + p.enorm.w, m.e_rstd.data(), de_in.data(),
                   G + p.enorm.w, n, d);
  rmsnorm_backward(dh.data(), m.h_in.data(), P + p.hnorm.w, m.h_rstd.data(), dh_in.data(),
                   G + p.hnorm.w, n, d);
  for (int64_t r = 0; r < n; ++r) {
    T* row = G + p.embed + int64_t{m.inputs[r]} * d;
    T* hrow = dh_target + m.src[r] * d;
    for (int i = 0; i < d; ++i) {
      row[i] += de_in[r * d + i];
      hrow[i] += dh_in[r * d + i];
    }
  }
}

template <typename Acts>  // MtpActs<T>, const or not
Acts& depth(Acts& m, size_t k) {  // k = 1..D
  return k == 1 ? m : m.deeper[k - 2];
}

}  // namespace

MtpP add_mtp(ParamTable& t, const ModelConfig& c, const RopeTable& rope) {
  MtpP p;
  for (int k = 0; k < c.num_nextn_predict_layers; ++k) {
    p.modules.push_back(add_module(t, c, rope, c.num_hidden_layers + k));
  }
  return p;
}

template <typename T>
double mtp_forward(const ModelConfig& c, const MtpP& p, const T* P, const Activations<T>& acts,
                   MtpActs<T>& m) {
  AHA_CHECK(static_cast<int64_t>(acts.h_final.size()) == acts.layout.n_tokens() * c.hidden_size,
            "the MTP loss needs the main forward's final hidden states");
  const size_t D = p.modules.size();
  AHA_CHECK(D >= 1, "no MTP module");
  m.deeper.resize(D - 1);
  double sum = 0;
  for (size_t k = 1; k <= D; ++k) {
    MtpActs<T>& mk = depth(m, k);
    const MtpActs<T>* prev = k == 1 ? nullptr : &depth(m, k - 1);
    module_rows(acts, static_cast<int>(k), prev != nullptr ? &prev->layout : nullptr, mk);
    module_forward(c, p.modules[k - 1], P, prev != nullptr ? prev->x_out.data() : acts.h_final.data(),
                   mk);
    int64_t count = 0;
    for (size_t r = 0; r < mk.targets.size(); ++r) {
      if (mk.targets[r] < 0) continue;
      sum -= double(mk.logprob[r]);
      ++count;
    }
    if (k == 1) m.count = count;
  }
  m.loss = m.count > 0 ? sum / double(m.count) / double(D) : 0.0;
  return m.loss;
}

template <typename T>
void mtp_backward(const ModelConfig& c, const MtpP& p, const T* P, T* G, const MtpActs<T>& m,
                  double weight, T* dh_final) {
  if (m.count == 0) return;
  const size_t D = p.modules.size();
  const double coef = weight / double(m.count) / double(D);
  // dxo[k]: the gradient that depth k + 1 sends into depth k's block output.
  std::vector<Buf<T>> dxo(D + 1);
  for (size_t k = 1; k < D; ++k) dxo[k].assign(depth(m, k).src.size() * c.hidden_size, T(0));
  for (size_t k = D; k >= 1; --k) {
    module_backward(c, p.modules[k - 1], P, G, depth(m, k), coef,
                    k < D ? dxo[k].data() : nullptr, k == 1 ? dh_final : dxo[k - 1].data());
  }
}

template <typename T>
std::vector<T> mtp_term(const ModelConfig& c, const MtpP& p, const T* P, T* G,
                        const Activations<T>& acts, const std::function<bool(int64_t)>& keep,
                        double weight, double global_rows, double& nll) {
  MtpActs<T> m;
  mtp_forward(c, p, P, acts, m);
  mtp_keep_rows(m, keep);
  nll = m.loss * double(m.count);
  std::vector<T> dh(acts.h_final.size(), T(0));
  mtp_backward(c, p, P, G, m, weight * double(m.count) / std::max(1.0, global_rows), dh.data());
  return dh;
}

void mtp_decode(const ModelConfig& c, const MtpModuleP& p, const float* P, const int32_t* tokens,
                const float* hidden, int64_t n, const DecodeStep& step, float* x) {
  const int d = c.hidden_size;
  Buf<float> e(n * d), e_h(n * d), h_h(n * d), rstd(n), a(n * 2 * d);
  module_input(c, p, P, tokens, n, e.data(), e_h.data(), rstd.data(), hidden, h_h.data(),
               rstd.data(), a.data());
  linear_stable(p.eh_proj, P, a.data(), x, n);
  SeqLayout layout;  // n one-token "sequences", as in Decoder::decode
  for (int64_t r = 0; r <= n; ++r) layout.seq_starts.push_back(r);
  layout.positions.assign(step.positions, step.positions + n);
  BlockPass pass;
  pass.layout = &layout;
  pass.keep_inputs = false;
  pass.rowstable = true;
  pass.decode = &step;
  LayerActs<float> la;
  block_forward(c, p.block, P, x, la, pass);
}

#define AHA_INSTANTIATE_MTP(T)                                                                 \
  template double mtp_forward<T>(const ModelConfig&, const MtpP&, const T*,                   \
                                 const Activations<T>&, MtpActs<T>&);                         \
  template void mtp_backward<T>(const ModelConfig&, const MtpP&, const T*, T*,                \
                                const MtpActs<T>&, double, T*);                               \
  template std::vector<T> mtp_term<T>(const ModelConfig&, const MtpP&, const T*, T*,          \
                                      const Activations<T>&,                                  \
                                      const std::function<bool(int64_t)>&, double, double,    \
                                      double&);

AHA_INSTANTIATE_MTP(float)
AHA_INSTANTIATE_MTP(double)

}  // namespace aha::policy
