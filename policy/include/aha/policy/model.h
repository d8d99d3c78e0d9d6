// The decoder: embedding, a stack of blocks (block.h: attention of any kind, then SwiGLU or
// DeepSeekMoE), final RMSNorm and LM head, over packed variable-length sequences, with a hand-written backward.
// Model<float> is the production model; Model<double> is the same code used by the
// finite-difference gradient checks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aha/policy/block.h"
#include "aha/policy/model_config.h"
#include "aha/policy/mtp.h"
#include "aha/policy/params.h"

namespace aha::policy {

// Sequences packed back to back with no padding.
struct Batch {
  std::vector<int32_t> tokens;       // [n_tokens]
  std::vector<int64_t> seq_starts;   // [n_seqs + 1]; seq_starts[0] == 0
  static Batch from_sequences(const std::vector<std::vector<int32_t>>& seqs);
  int64_t n_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t n_seqs() const { return static_cast<int64_t>(seq_starts.size()) - 1; }
};

struct ForwardOptions {
  double temperature = 1.0;   // logprobs of softmax(logits / temperature)
  bool keep_activations = true;  // false: scoring only, activations of one layer reused
  bool entropy = false;       // also fill Activations::entropy
  // Keep routing: for every replayable part (replay_widths(): per layer a sparse attention's
  // selection, then an MoE layer's experts), its ids [n_tokens * width] to replay.
  const std::vector<std::vector<int32_t>>* replay_topk = nullptr;
  // Keep sampling mask: per packed token, the ids the sampler drew from (nullptr: all). The
  // sets must outlive backward(): Activations keeps the pointers.
  const KeptSets* kept_ids = nullptr;
  // Run the MoE layers' routed experts sharded over the ranks (Model::set_expert_parallel).
  // Every rank must make the same sequence of such forwards and their backwards (forward_idle
  // and backward_idle on a rank without tokens): each MoE layer exchanges rows with all ranks.
  bool expert_parallel = false;
};

template <typename T>
struct Activations {
  SeqLayout layout;
  std::vector<int32_t> tokens, targets;  // targets[t] = next token in the sequence or -1
  std::vector<LayerActs<T>> layers;
  HcActs<T> hc_head;  // the streams' final collapse (hyper-connections only)
  Buf<T> x_final, h_final, rstd_final, lse;  // x_final [n, d]: the input of the final norm
  Buf<T> logprob;   // [n] log p(targets[t] | ...), NaN where targets[t] < 0
  Buf<T> entropy;   // [n] when requested
  double aux_loss = 0;  // sum over MoE layers of the sequence-wise balance loss (unweighted)
  // Sums over MoE layers of DeepSeek-V2's device-level and communication balance losses
  // (unweighted; statistics over every expert-parallel rank's tokens).
  double device_loss = 0, comm_loss = 0;
  double temperature = 1.0;
  KeptSets kept;    // the forward's ForwardOptions::kept_ids (empty: none)
};

// Every tensor of a model under config c, in order, without its values: what Model allocates,
// and what `aha train --dry-run` counts. The attention kinds refer to c and to rope.
struct ModelLayout {
  explicit ModelLayout(const ModelConfig& c);
  ParamTable table;
  std::unique_ptr<RopeTable> rope;
  size_t embed = kNoParam, lm_head = kNoParam;
  NormP final_norm;
  HcP hc_head;
  std::optional<MtpP> mtp;
  std::vector<LayerP> layers;
  std::vector<size_t> layer_begin;  // first offset of each layer, then of the final norm
};

// Parameters and gradients are each one contiguous block (see ParamTable). forward() is
// const and thread-safe (distinct Activations per caller); backward() and the optimizer mutate
// the model and need exclusive access. Non-copyable.
template <typename T>
class Model {
 public:
  explicit Model(const ModelConfig& config);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return c_; }
  const ParamTable& table() const { return table_; }
  std::vector<T>& params() { return params_; }
  const std::vector<T>& params() const { return params_; }
  // Allocated (zeroed) on first use: a model that only samples or scores (generate, eval, GRPO's
  // reference) never holds a second copy of its parameters' size.
  std::vector<T>& grads() {
    if (grads_.size() != params_.size()) grads_.assign(params_.size(), T(0));
    return grads_;
  }
  T* param(const std::string& name) { return params_.data() + table_.at(name).offset; }
  const std::vector<LayerP>& layers() const { return layers_; }
  size_t embed_offset() const { return embed_; }
  size_t lm_head_offset() const { return lm_head_; }
  const NormP& final_norm() const { return final_norm_; }
  const HcP& hc_head() const { return hc_head_; }  // off without hyper-connections
  // The multi-token prediction module (num_nextn_predict_layers = 1), or null.
  const MtpP* mtp() const { return mtp_ ? &*mtp_ : nullptr; }  // its modules, depth 1 first
  const RopeTable& rope() const { return *rope_; }
  int64_t n_params() const;  // trainable values, tied weights counted once

  // HF-style init: normal(0, std) for matrices and embeddings, ones for norms, zero biases.
  void init_random(uint64_t seed, double std = 0.02);
  // LoRA (config().lora): PEFT's init of the adapters, A Kaiming-uniform (a = sqrt(5)), B zero,
  // so that the adapted model starts equal to the base.
  void init_adapters(uint64_t seed);
  // First value of the adapters (== params().size() without): the frozen base is [0, this).
  size_t adapter_begin() const { return table_.base_total(); }
  void zero_grad();

  // Per-token logprobs of each next token (and what backward needs, in acts).
  void forward(const Batch& batch, const ForwardOptions& opts, Activations<T>& acts) const;
  // Accumulates into grads() the gradient of sum_t dlogprob[t] * logprob[t]
  // + balance.seq * aux_loss_alpha * acts.aux_loss + balance.batch * (device_balance_alpha *
  // acts.device_loss + comm_balance_alpha * acts.comm_loss) (moe.h: BalanceWeights).
  // dlogprob may be null (no logprob term).
  // dh_final, when set, is an extra gradient w.r.t. acts.h_final [n, d] from a loss computed on
  // the final hidden states outside the model (distillation: distill/kd_loss.h, whose LM-head
  // weight gradient the caller has already added to grads()).
  //
  // ready, when set, is called with [begin, end) ranges of grads() as they become final, in
  // grad_ranges() order (LM head and final norm, the layers from last to first, the embedding),
  // so that data-parallel training can start summing them while backward goes on.
  using GradsReady = std::function<void(size_t begin, size_t end)>;
  // dentropy (may be null): d loss / d entropy of each token's full next-token distribution
  // (an entropy bonus); the entropy is recomputed here, the forward need not have kept it.
  // No defaults: every caller says what the loss depends on.
  void backward(const Activations<T>& acts, const T* dlogprob, const T* dentropy,
                const BalanceWeights& balance, const T* dh_final, const GradsReady* ready);
  // Expert parallelism (ep.size > 1): forwards with ForwardOptions::expert_parallel run only
  // expert block ep.rank here, on the rows of every rank. Here every expert stays allocated, so
  // scoring and rollouts still run whole (GRPO); config().ep.sharded models allocate only their
  // block from the start (docs/scaling.md) and cannot be set here.
  void set_expert_parallel(const ExpertParallel& ep);
  const ExpertParallel& expert_parallel() const { return ep_; }
  // A rank without tokens in an expert-parallel forward/backward: serves the other ranks' rows
  // in every MoE layer and reports backward's gradient ranges in the same order.
  void forward_idle(Activations<T>& acts) const;
  void backward_idle(const Activations<T>& acts, const GradsReady* ready);

  // The ranges backward() reports, in its order; together they cover grads() once.
  std::vector<std::pair<size_t, size_t>> grad_ranges() const;

  // The per-token widths of what keep routing replays, in ForwardOptions::replay_topk order:
  // per layer, a sparse attention's selection_width(), then an MoE layer's experts per token.
  std::vector<int64_t> replay_widths() const;
  // Tokens routed to each expert of each MoE layer by that forward: [moe layer][expert].
  std::vector<std::vector<int64_t>> expert_loads(const Activations<T>& acts) const;
  // DeepSeek-V3 auxiliary-loss-free balancing: bias_e += gamma * sign(mean load - load_e).
  void update_routing_bias(const std::vector<std::vector<int64_t>>& loads, double gamma);

 private:
  ModelConfig c_;
  ParamTable table_;
  std::vector<T> params_, grads_;
  size_t embed_ = kNoParam, lm_head_ = kNoParam;
  NormP final_norm_;
  HcP hc_head_;
  std::optional<MtpP> mtp_;
  std::vector<LayerP> layers_;
  std::vector<size_t> layer_begin_;  // first parameter offset of each layer, then of the final norm
  std::unique_ptr<RopeTable> rope_;  // before layers_ is filled: the attention kinds refer to it
  ExpertParallel ep_;
};

// Largest position the RoPE table covers (min of max_position_embeddings and this cap).
constexpr int kMaxRopePositions = 32768;

}  // namespace aha::policy
