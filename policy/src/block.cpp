// The decoder block's walk over its sublayers, forward and in reverse.
#include "aha/policy/block.h"

#include <algorithm>
#include <type_traits>

#include "aha/core/error.h"

namespace aha::policy {

LayerP add_block(ParamTable& t, const ModelConfig& c, const RopeTable& rope, int l) {
  const std::string pre = "model.layers." + std::to_string(l);
  const int d = c.hidden_size;
  LayerP lp;
  lp.input_norm = add_norm(t, pre + ".input_layernorm.weight", d);
  lp.attn = make_attention(t, pre + ".self_attn", c, rope, l);
  lp.post_attn_norm = add_norm(t, pre + ".post_attention_layernorm.weight", d);
  lp.moe = c.is_moe_layer(l);
  if (lp.moe) {
    lp.moe_p = add_moe(t, pre + ".mlp", c);
  } else {
    lp.mlp_p = add_mlp(t, pre + ".mlp", d, c.intermediate_size);
  }
  return lp;
}

namespace {

template <typename T>
void attention_sublayer(const LayerP& lp, const T* P, const T* h, T* y, LayerActs<T>& la,
                        const BlockPass& pass) {
  if (pass.decode != nullptr) {
    if constexpr (std::is_same_v<T, float>) {
      lp.attn->decode(P, h, y, *pass.decode);
      return;
    }
    fail("decode runs in float only");
  }
  lp.attn->forward(P, h, y, *pass.layout, la.attn);
  if constexpr (std::is_same_v<T, float>) {
    if (pass.cache_rows != nullptr) lp.attn->cache_rows(la.attn, pass.layout->n_tokens(), pass.cache_rows);
  }
}

template <typename T>
void ffn_sublayer(const ModelConfig& c, const LayerP& lp, const T* P, const T* h, T* y,
                  LayerActs<T>& la, const BlockPass& pass) {
  if (lp.moe) {
    moe_forward(c, lp.moe_p, P, h, y, *pass.layout, la.moe, pass.forced_topk, pass.rowstable);
  } else {
    mlp_forward(lp.mlp_p, P, h, y, pass.layout->n_tokens(), la.mlp, false, pass.rowstable);
  }
}

}  // namespace

template <typename T>
void block_forward(const ModelConfig& c, const LayerP& lp, const T* P, T* x, LayerActs<T>& la,
                   const BlockPass& pass) {
  const int64_t n = pass.layout->n_tokens();
  const int d = c.hidden_size;
  Buf<T> y(n * d);
  for (size_t i = 0; i < kBlockSublayers.size(); ++i) {
    const Mixer m = kBlockSublayers[i];
    SublayerActs<T>& s = la.sub[i];
    if (pass.keep_inputs) s.x_in.assign(x, x + n * d);
    s.h.resize(n * d);
    s.rstd.resize(n);
    rmsnorm_forward(x, P + lp.norm(m).w, s.h.data(), s.rstd.data(), n, d, c.rms_norm_eps);
    if (m == Mixer::kAttention) {
      attention_sublayer(lp, P, s.h.data(), y.data(), la, pass);
    } else {
      ffn_sublayer(c, lp, P, s.h.data(), y.data(), la, pass);
    }
    for (int64_t j = 0; j < n * d; ++j) x[j] += y[j];
  }
}

template <typename T>
void block_backward(const ModelConfig& c, const LayerP& lp, const T* P, T* G,
                    const LayerActs<T>& la, const SeqLayout& layout, T* dx, double aux_coef) {
  const int64_t n = layout.n_tokens();
  const int d = c.hidden_size;
  Buf<T> dh(n * d);
  for (size_t i = kBlockSublayers.size(); i-- > 0;) {
    const Mixer m = kBlockSublayers[i];
    const SublayerActs<T>& s = la.sub[i];
    AHA_CHECK(!s.x_in.empty() || n == 0, "backward needs a forward that kept its inputs");
    // x_out = x_in + mixer(norm(x_in)); dx holds d x_out.
    std::fill(dh.begin(), dh.end(), T(0));
    if (m == Mixer::kAttention) {
      lp.attn->backward(P, G, s.h.data(), dx, dh.data(), layout, la.attn);
    } else if (lp.moe) {
      moe_backward(c, lp.moe_p, P, G, s.h.data(), dx, dh.data(), layout, la.moe, aux_coef);
    } else {
      mlp_backward(lp.mlp_p, P, G, s.h.data(), dx, dh.data(), n, la.mlp);
    }
    rmsnorm_backward(dh.data(), s.x_in.data(), P + lp.norm(m).w, s.rstd.data(), dx,
                     G + lp.norm(m).w, n, d);
  }
}

#define AHA_INSTANTIATE_BLOCK(T)                                                               \
  template void block_forward<T>(const ModelConfig&, const LayerP&, const T*, T*, LayerActs<T>&, \
                                 const BlockPass&);                                            \
  template void block_backward<T>(const ModelConfig&, const LayerP&, const T*, T*,               \
                                  const LayerActs<T>&, const SeqLayout&, T*, double);

AHA_INSTANTIATE_BLOCK(float)
AHA_INSTANTIATE_BLOCK(double)

}  // namespace aha::policy
