// The multi-token prediction module's loss, forward and backward.
#include "aha/policy/mtp.h"

#include <algorithm>

#include "aha/core/error.h"
#include "aha/policy/model.h"
#include "attention_impl.h"

namespace aha::policy {

MtpP add_mtp(ParamTable& t, const ModelConfig& c, const RopeTable& rope) {
  const int L = c.num_hidden_layers, d = c.hidden_size;
  const std::string pre = "model.layers." + std::to_string(L);
  MtpP p;
  p.embed = t.add(pre + ".embed_tokens.weight", {c.vocab_size, d});
  p.enorm = add_norm(t, pre + ".enorm.weight", d);
  p.hnorm = add_norm(t, pre + ".hnorm.weight", d);
  p.eh_proj = add_linear(t, pre + ".eh_proj", 2 * d, d);
  p.block = add_block(t, c, rope, L);
  p.head_norm = add_norm(t, pre + ".shared_head.norm.weight", d);
  p.head = t.add(pre + ".shared_head.head.weight", {c.vocab_size, d});
  return p;
}

template <typename T>
double mtp_forward(const ModelConfig& c, const MtpP& p, const T* P, const Activations<T>& acts,
                   MtpActs<T>& m) {
  const int d = c.hidden_size;
  AHA_CHECK(static_cast<int64_t>(acts.h_final.size()) == acts.layout.n_tokens() * d,
            "the MTP loss needs the main forward's final hidden states");
  m.layout = {};
  m.layout.seq_starts = {0};
  m.inputs.clear();
  m.targets.clear();
  m.src.clear();
  const auto& starts = acts.layout.seq_starts;
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    const int64_t t0 = starts[s], len = starts[s + 1] - t0;
    for (int64_t i = 0; i + 1 < len; ++i) {
      m.src.push_back(t0 + i);
      m.inputs.push_back(acts.tokens[t0 + i + 1]);
      m.targets.push_back(i + 2 < len ? acts.tokens[t0 + i + 2] : -1);
      m.layout.positions.push_back(static_cast<int32_t>(i));
    }
    m.layout.seq_starts.push_back(static_cast<int64_t>(m.src.size()));
  }
  const int64_t n = static_cast<int64_t>(m.src.size());
  m.e_in.resize(n * d);
  m.h_in.resize(n * d);
  for (int64_t r = 0; r < n; ++r) {
    std::copy_n(P + p.embed + int64_t{m.inputs[r]} * d, d, m.e_in.data() + r * d);
    std::copy_n(acts.h_final.data() + m.src[r] * d, d, m.h_in.data() + r * d);
  }
  m.e_h.resize(n * d);
  m.e_rstd.resize(n);
  m.h_h.resize(n * d);
  m.h_rstd.resize(n);
  rmsnorm_forward(m.e_in.data(), P + p.enorm.w, m.e_h.data(), m.e_rstd.data(), n, d,
                  c.rms_norm_eps);
  rmsnorm_forward(m.h_in.data(), P + p.hnorm.w, m.h_h.data(), m.h_rstd.data(), n, d,
                  c.rms_norm_eps);
  m.a.resize(n * 2 * d);
  for (int64_t r = 0; r < n; ++r) {
    std::copy_n(m.e_h.data() + r * d, d, m.a.data() + r * 2 * d);
    std::copy_n(m.h_h.data() + r * d, d, m.a.data() + r * 2 * d + d);
  }
  m.x_out.resize(n * d);
  linear_forward(p.eh_proj, P, m.a.data(), m.x_out.data(), n);
  BlockPass pass;
  pass.layout = &m.layout;
  block_forward(c, p.block, P, m.x_out.data(), m.la, pass);
  m.hn.resize(n * d);
  m.hn_rstd.resize(n);
  rmsnorm_forward(m.x_out.data(), P + p.head_norm.w, m.hn.data(), m.hn_rstd.data(), n, d,
                  c.rms_norm_eps);
  m.logprob.resize(n);
  m.lse.resize(n);
  logprob_forward(m.hn.data(), P + p.head, m.targets.data(), m.logprob.data(),
                  static_cast<T*>(nullptr), m.lse.data(), n, d, c.vocab_size, 1.0,
                  static_cast<const KeptSets*>(nullptr));
  double sum = 0;
  m.count = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (m.targets[r] < 0) continue;
    sum -= double(m.logprob[r]);
    ++m.count;
  }
  m.loss = m.count > 0 ? sum / double(m.count) : 0.0;
  return m.loss;
}

template <typename T>
void mtp_backward(const ModelConfig& c, const MtpP& p, const T* P, T* G, const MtpActs<T>& m,
                  double weight, T* dh_final) {
  const int d = c.hidden_size;
  const int64_t n = static_cast<int64_t>(m.src.size());
  if (m.count == 0) return;
  Buf<T> dlogprob(n, T(0));
  for (int64_t r = 0; r < n; ++r) {
    if (m.targets[r] >= 0) dlogprob[r] = static_cast<T>(-weight / double(m.count));
  }
  Buf<T> dhn(n * d, T(0)), dx(n * d, T(0));
  logprob_backward(dlogprob.data(), static_cast<const T*>(nullptr), m.hn.data(), P + p.head,
                   m.targets.data(), m.lse.data(), dhn.data(), G + p.head, n, d, c.vocab_size,
                   1.0, static_cast<const KeptSets*>(nullptr));
  rmsnorm_backward(dhn.data(), m.x_out.data(), P + p.head_norm.w, m.hn_rstd.data(), dx.data(),
                   G + p.head_norm.w, n, d);
  block_backward(c, p.block, P, G, m.la, m.layout, dx.data(), 0.0);
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
    T* hrow = dh_final + m.src[r] * d;
    for (int i = 0; i < d; ++i) {
      row[i] += de_in[r * d + i];
      hrow[i] += dh_in[r * d + i];
    }
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

void mtp_decode(const ModelConfig& c, const MtpP& p, const float* P, const int32_t* tokens,
                const float* hidden, int64_t n, const DecodeStep& step, float* x) {
  const int d = c.hidden_size;
  Buf<float> e(n * d), e_h(n * d), h_h(n * d), rstd(n), a(n * 2 * d);
  for (int64_t r = 0; r < n; ++r) {
    std::copy_n(P + p.embed + int64_t{tokens[r]} * d, d, e.data() + r * d);
  }
  rmsnorm_forward(e.data(), P + p.enorm.w, e_h.data(), rstd.data(), n, d, c.rms_norm_eps);
  rmsnorm_forward(hidden, P + p.hnorm.w, h_h.data(), rstd.data(), n, d, c.rms_norm_eps);
  for (int64_t r = 0; r < n; ++r) {  // the embedding half first, as in training
    std::copy_n(e_h.data() + r * d, d, a.data() + r * 2 * d);
    std::copy_n(h_h.data() + r * d, d, a.data() + r * 2 * d + d);
  }
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
