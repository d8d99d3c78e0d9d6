// The decoder block's walk over its sublayers, forward and in reverse.
#include "aha/policy/block.h"

#include <algorithm>
#include <type_traits>

#include "aha/core/error.h"
#include "aha/policy/profile.h"
#include "for_chunks.h"

namespace aha::policy {

LayerP add_block(ParamTable& t, const ModelConfig& c, const RopeTable& rope, int l) {
  const std::string pre = "model.layers." + std::to_string(l);
  const int d = c.hidden_size;
  LayerP lp;
  if (c.engram && c.engram->in_layer(l)) lp.engram = add_engram(t, pre + ".engram", c, l);
  lp.input_norm = add_norm(t, pre + ".input_layernorm.weight", d);
  lp.attn = make_attention(t, pre + ".self_attn", c, rope, l);
  lp.post_attn_norm = add_norm(t, pre + ".post_attention_layernorm.weight", d);
  lp.moe = c.is_moe_layer(l);
  if (lp.moe) {
    lp.moe_p = add_moe(t, pre + ".mlp", c);
  } else {
    lp.mlp_p = add_mlp(t, pre + ".mlp", d, c.intermediate_size);
  }
  if (c.has_hc()) {
    lp.hc[0] = add_hc(t, pre + ".attn_hc", c);
    lp.hc[1] = add_hc(t, pre + ".ffn_hc", c);
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
  la.attn.replay = pass.forced_selection;
  la.attn.rowstable = pass.rowstable;
  lp.attn->forward(P, h, y, *pass.layout, la.attn);
  if constexpr (std::is_same_v<T, float>) {
    if (pass.cache_rows != nullptr) lp.attn->cache_rows(la.attn, pass.layout->n_tokens(), pass.cache_rows);
  }
}

template <typename T>
void ffn_sublayer(const ModelConfig& c, const LayerP& lp, const T* P, const T* h, T* y,
                  LayerActs<T>& la, const BlockPass& pass) {
  if (lp.moe) {
    moe_forward(c, lp.moe_p, P, h, y, *pass.layout, la.moe, pass.forced_topk, pass.rowstable,
                pass.ep);
  } else {
    mlp_forward(lp.mlp_p, P, h, y, pass.layout->n_tokens(), la.mlp, false, pass.rowstable);
  }
}

}  // namespace

template <typename T>
void block_forward(const ModelConfig& c, const LayerP& lp, const T* P, T* x, LayerActs<T>& la,
                   const BlockPass& pass) {
  BlockProfile* prof = active_block_profile();  // benchmarks only; null otherwise
  ScopedNs block_time(prof != nullptr ? &prof->block_ns : nullptr);
  const int64_t n = pass.layout->n_tokens();
  const int d = c.hidden_size;
  // y is written in full by either sublayer before it is read: no zeroing.
  ScratchBuf<T> y(static_cast<size_t>(n * d));
  Buf<T> u(c.has_hc() ? n * d : 0);
  if (lp.engram.on()) {
    AHA_CHECK(pass.ngram_ids != nullptr, "an Engram layer needs the tokens' n-gram ids");
    engram_forward(c, lp.engram, P, pass.ngram_ids, x, la.engram, *pass.layout, pass.engram,
                   pass.rowstable);
  }
  for (size_t i = 0; i < kBlockSublayers.size(); ++i) {
    const Mixer m = kBlockSublayers[i];
    SublayerActs<T>& s = la.sub[i];
    const T* in = x;  // the sublayer's input: the residual, or the streams collapsed
    if (lp.hc[i].on()) {
      hc_collapse(c, lp.hc[i], P, x, u.data(), la.hc[i], n, pass.keep_inputs, pass.rowstable);
      in = u.data();
    }
    // The residual's input is kept by the add below (one pass that reads x once); the collapsed
    // streams are not the residual, so they are copied here.
    const bool keep_residual = pass.keep_inputs && !lp.hc[i].on();
    if (pass.keep_inputs && lp.hc[i].on()) s.x_in.assign(in, in + n * d);
    if (keep_residual) resize_for_overwrite(s.x_in, n * d);
    resize_for_overwrite(s.h, n * d);
    resize_for_overwrite(s.rstd, n);
    rmsnorm_forward(in, P + lp.norm(m).w, s.h.data(), s.rstd.data(), n, d, c.rms_norm_eps);
    if (m == Mixer::kAttention) {
      ScopedNs t(prof != nullptr ? &prof->attention_ns : nullptr);
      attention_sublayer(lp, P, s.h.data(), y.data(), la, pass);
    } else {
      ScopedNs t(prof != nullptr ? &prof->ffn_ns : nullptr);
      ffn_sublayer(c, lp, P, s.h.data(), y.data(), la, pass);
    }
    if (lp.hc[i].on()) {
      hc_expand(c, y.data(), x, la.hc[i], n, pass.keep_inputs);
    } else {
      T* kept = keep_residual ? s.x_in.data() : nullptr;
      const T* yv = y.data();
      for_chunks(n * d, kFillChunk, [&](int64_t, int64_t j0, int64_t j1) {
        if (kept != nullptr) std::copy(x + j0, x + j1, kept + j0);
        for (int64_t j = j0; j < j1; ++j) x[j] += yv[j];
      });
    }
  }
}

template <typename T>
void block_backward(const ModelConfig& c, const LayerP& lp, const T* P, T* G,
                    const LayerActs<T>& la, const SeqLayout& layout, T* dx,
                    const BalanceWeights& balance) {
  const int64_t n = layout.n_tokens();
  const int d = c.hidden_size;
  const int m = c.hc_mult;
  ScratchBuf<T> dh(static_cast<size_t>(n * d));  // zeroed before each sublayer
  Buf<T> dy(c.has_hc() ? n * d : 0), du(c.has_hc() ? n * d : 0);
  Buf<T> dpost(c.has_hc() ? n * m : 0), dcomb(c.has_hc() ? n * m * m : 0);
  for (size_t i = kBlockSublayers.size(); i-- > 0;) {
    const Mixer mx = kBlockSublayers[i];
    const SublayerActs<T>& s = la.sub[i];
    AHA_CHECK(!s.x_in.empty() || n == 0, "backward needs a forward that kept its inputs");
    const bool hc = lp.hc[i].on();
    // Plain: x_out = x_in + mixer(norm(x_in)), dx holds d x_out and receives d x_in in place.
    // Hyper-connections: dx becomes the comb path's gradient, dy the mixer output's, and the
    // collapse adds the rest once du (the gradient of the mixer's input) is known.
    const T* dmix = dx;
    T* dres = dx;
    if (hc) {
      hc_expand_backward(c, la.hc[i], dx, dy.data(), dpost.data(), dcomb.data(), n);
      dmix = dy.data();
      fill_zero(du.data(), n * d);
      dres = du.data();
    }
    fill_zero(dh.data(), n * d);
    if (mx == Mixer::kAttention) {
      lp.attn->backward(P, G, s.h.data(), dmix, dh.data(), layout, la.attn);
    } else if (lp.moe) {
      moe_backward(c, lp.moe_p, P, G, s.h.data(), dmix, dh.data(), layout, la.moe, balance);
    } else {
      mlp_backward(lp.mlp_p, P, G, s.h.data(), dmix, dh.data(), n, la.mlp);
    }
    rmsnorm_backward(dh.data(), s.x_in.data(), P + lp.norm(mx).w, s.rstd.data(), dres,
                     G + lp.norm(mx).w, n, d);
    if (hc) {
      hc_collapse_backward(c, lp.hc[i], P, G, la.hc[i], du.data(), dpost.data(), dcomb.data(), dx,
                           n);
    }
  }
  if (lp.engram.on()) engram_backward(c, lp.engram, P, G, la.engram, layout, dx);
}

#define AHA_INSTANTIATE_BLOCK(T)                                                               \
  template void block_forward<T>(const ModelConfig&, const LayerP&, const T*, T*, LayerActs<T>&, \
                                 const BlockPass&);                                            \
  template void block_backward<T>(const ModelConfig&, const LayerP&, const T*, T*,               \
                                  const LayerActs<T>&, const SeqLayout&, T*, const BalanceWeights&);

AHA_INSTANTIATE_BLOCK(float)
AHA_INSTANTIATE_BLOCK(double)

}  // namespace aha::policy
