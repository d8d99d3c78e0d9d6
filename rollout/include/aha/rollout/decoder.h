// The decode path of the policy. Prompts are prefilled with the training-path kernels; then
// every live sequence advances one token per step, all together as one batch. What a cache row
// holds is the attention kind's choice (policy/attention.h): for MLA only the normalised latent
// and the rotated shared key, with W_UK folded into the query and W_UV into the output
// ("absorbed"); the naive MLA path rebuilds full keys and values from the latent and is kept as
// the test oracle and the benchmark baseline.
// Thread-safe: const methods on a shared Decoder may run concurrently with distinct caches.
//
// Expert parallelism (a model built with config().ep.sharded: each rank holds only its block of
// routed experts): prefill and decode are collective. Every rank must make the same sequence of
// calls, with any number of rows, none included; each MoE layer then sends the rows to the
// ranks of their experts and back, and a rank without rows serves the others'. The decode
// kernels are batch invariant, so the rows get the bits one rank holding every expert gives.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "aha/core/gemm_bf16.h"
#include "aha/policy/model.h"

namespace aha::rollout {

// One sequence's cache: per layer, `len` rows of that layer's cache width.
struct SeqCache {
  std::vector<policy::CacheRows> rows;  // [n_layers][len * row width]
  int64_t len = 0;
  // Engram: the last max_ngram - 1 tokens (oldest first) and, per layer (empty where the layer
  // has none), the short convolution's last (kernel - 1) * max_ngram inputs [rows, streams * d].
  std::vector<int32_t> recent;
  std::vector<std::vector<float>> engram_history;
  // Speculative decoding with the MTP module (Decoder::draft): the module's block cache, the
  // positions it holds, and the main model's normed final hidden rows of positions draft_len ..
  // len - 1, whose module rows are still to run ([len - draft_len, d]). Kept only when set on.
  struct Draft {
    bool on = false;
    policy::CacheRows rows;
    int64_t len = 0;
    std::vector<float> hidden;
  } draft;
};

// Expert ids per MoE layer: [moe layer][n_tokens * K].
using Routing = std::vector<std::vector<int32_t>>;

class Decoder {
 public:
  Decoder(const policy::Model<float>& model, bool absorbed = true);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  const policy::Model<float>& model() const { return model_; }
  int64_t cache_bytes_per_token() const;
  // What a cache of full keys and values would need, for comparison.
  int64_t full_kv_bytes_per_token() const;
  // Room for `tokens` positions in each layer's cache rows (the layers made if missing), so that
  // decode steps append in place instead of reallocating and copying a growing cache.
  void reserve(SeqCache& cache, int64_t tokens) const;

  // Runs the prompt through the model, fills `cache` and writes the last position's logits.
  void prefill(const std::vector<int32_t>& prompt, SeqCache& cache, std::vector<float>& logits,
               Routing* routing = nullptr) const;
  // Several prompts at once: their rows share every GEMM, through the decode path's
  // batch-invariant kernels, so each prompt gets the bits it gets alone, in any mix. logits [B, vocab]: each prompt's last
  // row; routings (optional) receives each prompt's routing.
  void prefill(const std::vector<const std::vector<int32_t>*>& prompts,
               const std::vector<SeqCache*>& caches, std::vector<float>& logits,
               std::vector<Routing>* routings = nullptr) const;
  // Feeds tokens[b] to sequence b at position caches[b]->len, appends to its cache and writes
  // logits [B, vocab]. routing (optional) receives [moe layer][B * K]. A cache listed k times
  // takes k consecutive tokens in one step (positions len, len + 1, ...: the verification of a
  // speculative draft); not with Engram, whose n-grams would need the earlier rows' tokens.
  void decode(const std::vector<int32_t>& tokens, const std::vector<SeqCache*>& caches,
              std::vector<float>& logits, Routing* routing = nullptr) const;
  // Drops the positions from len on (a rejected draft).
  void truncate(SeqCache& cache, int64_t len) const;

  // Whether prefill and decode are collective over the expert-parallel ranks (above).
  bool lockstep() const;

  // Speculative decoding: whether the model has an MTP module to draft with.
  bool can_draft() const;
  // Runs the MTP module over the first tokens[b].size() pending rows of caches[b] (pending row
  // j pairs the hidden of position j with the token at j + 1, which tokens[b] holds) and writes
  // the draft logits of each cache's last row [B, vocab]: the module's prediction of the token
  // two positions after it. A cache with no tokens gets no row (its logits are left as they were).
  // prompt: the rows are the prompts' (DecodeStep::prefill), the module's first pass.
  void draft(const std::vector<SeqCache*>& caches,
             const std::vector<std::vector<int32_t>>& tokens, std::vector<float>& logits,
             bool prompt = false) const;

 private:
  // x [n, residual_width]: the tokens' embeddings (copied into every hyper-connection stream).
  void embed(const int32_t* tokens, int64_t n, policy::Buf<float>& x) const;
  // The blocks over one row per token (caches[b] takes tokens[b] at its next position, a cache
  // listed k times k consecutive ones) into x [n, residual_width]; appends to the caches.
  // prefill: the rows are prompts' (DecodeStep::prefill).
  void forward_rows(const std::vector<int32_t>& tokens, const std::vector<SeqCache*>& caches,
                    Routing* routing, policy::Buf<float>& x, bool prefill = false) const;
  // The first prompt of each thread's group, then B: one group unless the prompts have rows
  // enough for kMinLaneRows a thread (and never in lockstep, whose passes are collective).
  std::vector<int64_t> prefill_lanes(const std::vector<const std::vector<int32_t>*>& prompts) const;
  // Prompts [b0, b1) through prefill_rows: logits [b1 - b0, vocab], routings[b] for b in it.
  void prefill_group(const std::vector<const std::vector<int32_t>*>& prompts,
                     const std::vector<SeqCache*>& caches, int64_t b0, int64_t b1,
                     std::vector<float>& logits, std::vector<Routing>* routings) const;
  // The prompts' rows (a cache listed once per row) through forward_rows in passes; logits of
  // the rows `last` [last.size(), vocab]; all (optional) receives [moe layer][n * K].
  void prefill_rows(const std::vector<int32_t>& tokens, const std::vector<SeqCache*>& rows,
                    const std::vector<int64_t>& last, std::vector<float>& logits,
                    Routing* all) const;
  // The logits [out_rows, vocab] of the chosen rows of x (caches: one per row, as forward_rows);
  // a drafting cache keeps every one of its rows' hidden for the MTP module.
  void rows_out(const policy::Buf<float>& x, const std::vector<SeqCache*>& caches,
                const std::vector<int64_t>& out_rows, std::vector<float>& logits) const;
  void prefill_engram(const std::vector<int32_t>& prompt, SeqCache& cache,
                      std::vector<float>& logits, Routing* routing) const;
  void prefill_layer(int l, const policy::SeqLayout& layout, SeqCache& cache,
                     const std::vector<int32_t>& ngram_ids, policy::Buf<float>& x,
                     Routing* routing) const;
  // A lockstep pass without rows of this rank: its experts serve the other ranks' rows.
  void serve_experts() const;
  // Final norm and LM head of n rows of x [n, residual_width] into logits [n, vocab]
  // (batch-invariant GEMM).
  void head(const float* x, int64_t n, std::vector<float>& logits) const;
  // The LM head alone, from rows already through final_hidden.
  void head_of_hidden(const float* h, int64_t n, std::vector<float>& logits) const;
  // The final collapse and norm of n rows of x into h [n, d].
  void final_hidden(const float* x, int64_t n, float* h) const;

  // Engram: each decoded token's n-gram ids [B, max_ngram] from the caches' recent tokens.
  std::vector<int32_t> engram_context(const std::vector<int32_t>& tokens,
                                      const std::vector<SeqCache*>& caches) const;

  // The cache rows' layout follows the matmul precision (a bf16 MLA latent is stored as bf16):
  // one changed after construction would misread them, so prefill and decode refuse it.
  void check_precision() const;

  // A decode step's activation buffers (a few per layer and expert), kept for the next step:
  // allocating and freeing them every step was 4% of a batch-16 step. One caller at a time
  // borrows them; a concurrent or nested one (another thread, or a task run while this one
  // waits) makes its own.
  struct KeptActs;
  class BorrowedActs;

  const policy::Model<float>& model_;
  bool absorbed_;
  MatmulPrecision precision_;
  std::vector<int64_t> cache_width_;  // per layer
  int64_t full_kv_width_ = 0;         // summed over layers
  std::unique_ptr<KeptActs> kept_;
};

}  // namespace aha::rollout
