// One decoder block, described once. A block is a list of residual sublayers, each
// x += mixer(rmsnorm(x)): attention (any AttentionKind) then the FFN (dense SwiGLU or
// DeepSeekMoE). With hyper-connections (hyper.h) x is hc_mult streams, collapsed into the
// mixer's input and expanded back around every sublayer. In Engram layers (engram.h) the
// memory is added to every stream before the first sublayer. block_forward walks the list for every pass (training, prefill, decode: a
// BlockPass says which), block_backward walks it in reverse; the model and the decoder only
// stack blocks. A change to how a block composes (hyper-connections, a new sublayer) is made in
// block.cpp alone.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "aha/policy/attention.h"
#include "aha/policy/engram.h"
#include "aha/policy/hyper.h"
#include "aha/policy/layers.h"
#include "aha/policy/mlp.h"
#include "aha/policy/moe.h"

namespace aha::policy {

enum class Mixer { kAttention, kFfn };
// The sublayers of a block, in order.
inline constexpr std::array<Mixer, 2> kBlockSublayers = {Mixer::kAttention, Mixer::kFfn};

// Per-layer block parameters (offsets into the parameter block; the attention object holds its
// own). Move-only.
struct LayerP {
  NormP input_norm, post_attn_norm;  // the norms before attention and before the FFN
  std::unique_ptr<Attention> attn;
  bool moe = false;
  MlpP mlp_p;
  MoeP moe_p;
  std::array<HcP, kBlockSublayers.size()> hc;  // per sublayer; off unless hc_mult > 0
  EngramP engram;  // off unless the layer is in engram.layer_ids
  const NormP& norm(Mixer m) const { return m == Mixer::kAttention ? input_norm : post_attn_norm; }
};

// A sublayer's input (the collapsed streams with hyper-connections), its normed input and 1/rms:
// [n, d], [n, d], [n].
template <typename T>
struct SublayerActs {
  ScratchBuf<T> x_in, h, rstd;  // written in full by each forward: not zeroed when grown
};

template <typename T>
struct LayerActs {
  std::array<SublayerActs<T>, kBlockSublayers.size()> sub;  // in kBlockSublayers order
  std::array<HcActs<T>, kBlockSublayers.size()> hc;
  EngramActs<T> engram;
  AttnActs<T> attn;
  MlpActs<T> mlp;
  MoeActs<T> moe;
};

// What a pass through a block does besides computing its output.
struct BlockPass {
  const SeqLayout* layout = nullptr;   // the tokens' sequences and positions
  bool keep_inputs = true;             // save each sublayer's input (backward needs them)
  const int32_t* forced_topk = nullptr;  // MoE: replay this selection [n, K]
  // Sparse attention: replay this selection [n, selection_width()] (nullptr: choose).
  const int32_t* forced_selection = nullptr;
  bool rowstable = false;              // the batch-invariant kernels of the decode path
  // MoE: the routed experts sharded over the ranks (expert-parallel training forwards; every
  // rank walks the same layers); nullptr: every expert runs here (rollouts, scoring).
  const ExpertParallel* ep = nullptr;
  const DecodeStep* decode = nullptr;  // decode: attention over the caches (float only)
  float* cache_rows = nullptr;         // prefill: the tokens' cache rows [n, cache_width]
  // Engram layers: each token's n-gram ids [n, max_ngram] (engram.h) and the short
  // convolution's per-sequence history (decode and prefill).
  const int32_t* ngram_ids = nullptr;
  EngramState engram;
};

// x [n, residual_width] becomes the block's output; la receives the activations.
template <typename T>
void block_forward(const ModelConfig& c, const LayerP& lp, const T* P, T* x, LayerActs<T>& la,
                   const BlockPass& pass);
// dx [n, residual_width]: d loss / d block output in, d loss / d block input out. Parameter gradients are
// added into G; balance weights the MoE balance losses.
template <typename T>
void block_backward(const ModelConfig& c, const LayerP& lp, const T* P, T* G,
                    const LayerActs<T>& la, const SeqLayout& layout, T* dx,
                    const BalanceWeights& balance);

// Registers layer l's tensors (HF names under model.layers.<l>) and returns its parameters.
LayerP add_block(ParamTable& t, const ModelConfig& c, const RopeTable& rope, int l);

}  // namespace aha::policy
