// Attention kinds behind one interface. A decoder block holds one Attention per layer and never
// asks which kind it is: the training forward/backward, the prefill's cache rows and the
// one-token decode over the caches are all methods of the kind. Kinds today: GQA/MHA
// (Llama/Qwen2), MLA (DeepSeek-V2/V3: full keys rebuilt from the latent for training, absorbed
// or naive decode over the latent cache), sliding-window GQA (Qwen2's use_sliding_window),
// native sparse attention on GQA projections (NSA) and DeepSeek Sparse Attention (DSA: MLA over
// the keys a lightning indexer selects, DeepSeek-V3.2).
// docs/architecture.md says how to add one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aha/policy/model_config.h"
#include "aha/policy/params.h"
#include "aha/policy/rope.h"
#include "aha/policy/seq_layout.h"

namespace aha::policy {

// ---- The kernel: softmax attention over packed sequences (training/scoring path) ----
// q [n, n_heads, qk_dim], k [n, n_kv_heads, qk_dim], v [n, n_kv_heads, v_dim] (each row of a
// token contiguous), out [n, n_heads, v_dim], lse [n_heads, n] (saved for backward).
// Attention never crosses a sequence boundary and is causal; a kind may narrow it further:
struct AttnShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int qk_dim = 0;
  int v_dim = 0;
  double scale = 1.0;
  // > 0: query i sees only keys j with i - window < j <= i (positions within its sequence).
  int64_t window = 0;
  // Sparse kinds: per packed query token, the ascending in-sequence key positions it may see
  // (each <= its own position; an empty list: all causal keys). nullptr: none.
  const std::vector<std::vector<int32_t>>* selected = nullptr;
};
template <typename T>
void attention_forward(const T* q, const T* k, const T* v, T* out, T* lse,
                       const std::vector<int64_t>& seq_starts, const AttnShape& s);
// dq, dk, dv are written (not accumulated): they are fresh buffers in every caller.
template <typename T>
void attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, T* dq, T* dk, T* dv, const std::vector<int64_t>& seq_starts,
                        const AttnShape& s);

// ---- Kinds ----
enum class AttentionKind { kGqa, kMla, kSlidingWindow, kNsa, kDsa };
const char* attention_kind_name(AttentionKind kind);

// What a kind's forward keeps for its backward and for the prefill's cache rows: buffers the
// kind lays out itself (each kind names its slots), so a new kind adds no fields here.
template <typename T>
struct AttnActs {
  // Not zeroed when grown: each kind sizes its slots with resize_for_overwrite where it writes
  // them in full, resize_zeroed elsewhere (the zeroing was 5% of a training step).
  std::vector<ScratchBuf<T>> buf;
  // Sparse kinds: the keys each query was given (backward holds the selection fixed).
  std::vector<std::vector<int32_t>> selected;
  // Sparse kinds, set by the caller before forward: a selection to replay instead of choosing,
  // selection_width() ids per token (the sampler's choice, so training attends to the same
  // keys); nullptr: choose.
  const int32_t* replay = nullptr;
  // Set by the caller before forward (BlockPass::rowstable): the projections use the decode
  // path's batch-invariant GEMM, as the block's other sublayers do.
  bool rowstable = false;
  ScratchBuf<T>& operator[](size_t i) { return buf[i]; }
  const ScratchBuf<T>& operator[](size_t i) const { return buf[i]; }
};

// The keys over which DSA's indexer loss compares its distribution with the main attention's:
// every causal key (the dense warm-up) or the selected ones (the sparse stage).
enum class IndexerSupport { kDense, kSparse };

// One layer's cache rows of one sequence, on a cache line: decode's products read them with
// 64-byte loads, each split over two lines when the rows start off one (aligned.h).
using CacheRows = std::vector<float, LineAllocator<float>>;

// One decode pass of one layer over B rows: row b is a token at positions[b] of the sequence
// whose cache is rows[b]. A cache listed k times, in consecutive rows, takes k consecutive
// tokens (a prompt's rows at prefill, a speculative draft's verification).
struct DecodeStep {
  std::vector<CacheRows*> rows;  // per row: this layer's cache, appended to
  const int32_t* positions = nullptr;
  bool absorbed = true;  // MLA: absorbed attention over the latent (false: the naive oracle)
  // The rows are prompts' (many per sequence, at consecutive positions): MLA rebuilds each
  // prompt's keys and values once instead of absorbing (attn_mla.cpp).
  bool prefill = false;
  // Sparse kinds: receives each sequence's selection, selection_width() ids per sequence.
  std::vector<int32_t>* selections = nullptr;
  // One of decode_row_blocks' blocks, each on its own thread: its loops stay on that thread.
  bool in_row_block = false;
};

// One layer's attention. Parameters live in the model's block (offsets); the object holds the
// offsets and references to the model's config and RoPE table, so it lives inside the Model.
// Thread-safe: every method is const.
class Attention {
 public:
  virtual ~Attention() = default;
  virtual AttentionKind kind() const = 0;

  // y = attention(x) over a packed batch, x and y [n, d_model]; a keeps what backward needs.
  virtual void forward(const float* P, const float* x, float* y, const SeqLayout& layout,
                       AttnActs<float>& a) const = 0;
  virtual void forward(const double* P, const double* x, double* y, const SeqLayout& layout,
                       AttnActs<double>& a) const = 0;
  // Adds d/dx into dx and the parameter gradients into G.
  virtual void backward(const float* P, float* G, const float* x, const float* dy, float* dx,
                        const SeqLayout& layout, const AttnActs<float>& a) const = 0;
  virtual void backward(const double* P, double* G, const double* x, const double* dy,
                        double* dx, const SeqLayout& layout, const AttnActs<double>& a) const = 0;

  // Floats the decode cache holds per token, and what full keys and values would need.
  virtual int64_t cache_width() const = 0;
  virtual int64_t full_kv_width() const { return cache_width(); }
  // The cache rows [n, cache_width()] of the n tokens of the forward that filled `a` (prefill).
  virtual void cache_rows(const AttnActs<float>& a, int64_t n, float* rows) const = 0;
  // y [B, d_model] for the B new tokens h [B, d_model]; appends their rows to step.rows. Every
  // step is per row, so a token's output does not depend on the rest of the batch.
  virtual void decode(const float* P, const float* h, float* y, const DecodeStep& step) const = 0;

  // Sparse kinds: ids per token that describe the selection (0: a dense kind), and those of the
  // n tokens of the forward that filled `a` [n, selection_width()] (prefill records them).
  virtual int64_t selection_width() const { return 0; }
  virtual void selection_rows(const AttnActs<float>& a, int64_t n, int32_t* out) const {}

  // DSA: the indexer's KL loss to the main attention, summed over the n tokens of the forward
  // that filled `a` (x its input); adds weight * its gradient into G, into the indexer's own
  // tensors only (its inputs are detached). Other kinds: 0.
  virtual double indexer_loss(const float* P, float* G, const float* x, const SeqLayout& layout,
                              const AttnActs<float>& a, IndexerSupport support,
                              double weight) const {
    return 0;
  }
  virtual double indexer_loss(const double* P, double* G, const double* x,
                              const SeqLayout& layout, const AttnActs<double>& a,
                              IndexerSupport support, double weight) const {
    return 0;
  }
};

// Native sparse attention (config key "nsa", GQA models): compressed blocks of block_size
// tokens, block_counts selected blocks per query and GQA group, a window of window_size tokens
// (0: no window branch).
struct NsaOptions {
  int64_t block_size = 0;
  int64_t block_counts = 0;
  int64_t window_size = 0;
};
// The "nsa" object of the config (nullopt: none); a bad value fails naming the key.
std::optional<NsaOptions> nsa_options(const ModelConfig& c);

// The kind of layer `layer` under config c (sliding-window layers per use_sliding_window,
// sliding_window and max_window_layers, or an explicit layer_types list).
AttentionKind attention_kind(const ModelConfig& c, int layer);
// Registers layer `layer`'s attention tensors under `prefix` (HF names) and returns the kind.
// c and rope must outlive the result.
std::unique_ptr<Attention> make_attention(ParamTable& t, const std::string& prefix,
                                          const ModelConfig& c, const RopeTable& rope, int layer);

}  // namespace aha::policy
