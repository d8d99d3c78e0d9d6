// The model's hyper-parameters, read from (and written to) a Hugging Face config.json.
// One struct is the single source of truth for every layer's shapes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/policy/lora.h"

namespace aha::policy {

enum class ModelType { kDeepseekV2, kDeepseekV3, kDeepseekV32, kLlama, kQwen2 };
enum class ScoreFunc { kSoftmax, kSigmoid };
enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

// rope_scaling of the config: none, linear, yarn (DeepSeek) or llama3.
enum class RopeType { kNone, kLinear, kYarn, kLlama3 };
const char* rope_type_name(RopeType type);

struct RopeScaling {
  RopeType type = RopeType::kNone;
  double factor = 1.0;
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
  int original_max_position_embeddings = 4096;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
};

// Engram (DeepSeek's hashed N-gram conditional memory): the config.json "engram" object.
struct EngramConfig {
  int max_ngram_size = 3;       // N: 2- to N-grams are hashed
  int n_head_per_ngram = 8;     // hash heads (each with its own prime modulus) per n
  int n_embed_per_ngram = 512;  // table width per n, split over its heads
  std::vector<int> layer_ids;   // the layers that carry an Engram
  std::vector<int64_t> engram_vocab_size;  // per n = 2..N: where the prime search starts
  int64_t seed = 0;
  int kernel_size = 4;          // taps of the short causal convolution (dilation N)
  int pad_id = 2;               // tokenizer id that pads the n-grams before a sequence starts
  bool freeze_table = false;    // GRPO/SFT leave the embedding tables unchanged
  // Token id -> canonical id of its normalised text (engram_compression.json beside the
  // checkpoint); empty: identity.
  std::shared_ptr<const std::vector<int32_t>> compression;
  int head_dim() const { return n_embed_per_ngram / n_head_per_ngram; }
  int n_heads() const { return (max_ngram_size - 1) * n_head_per_ngram; }
  int width() const { return (max_ngram_size - 1) * n_embed_per_ngram; }  // e_t's width
  bool in_layer(int l) const;
};

// Expert parallelism: the routed experts split into `size` contiguous blocks of equal size,
// block r run by rank r. size 1: every expert runs here.
struct ExpertParallel {
  int rank = 0;
  int size = 1;
  // true: this rank allocates only its block (weights, gradients); the other experts have no
  // storage, so the model runs only expert-parallel forwards. false: every expert is allocated,
  // and forwards without ForwardOptions::expert_parallel run whole (GRPO's rollouts, scoring).
  bool sharded = false;
  bool on() const { return size > 1; }
  int n_local(int n_experts) const { return n_experts / size; }
  int first(int n_experts) const { return n_local(n_experts) * rank; }
  bool holds(int expert, int n_experts) const {
    const int lo = first(n_experts);
    return !sharded || (expert >= lo && expert < lo + n_local(n_experts));
  }
};

struct ModelConfig {
  ModelType model_type = ModelType::kDeepseekV3;
  int vocab_size = 0;
  int hidden_size = 0;         // d_model
  int num_hidden_layers = 0;   // n_layers
  int num_attention_heads = 0; // n_heads
  int num_key_value_heads = 0; // n_kv_heads (GQA; MLA uses n_heads)
  int intermediate_size = 0;   // dense SwiGLU width
  int max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v bias (qwen2: true)
  int head_dim = 0;             // GQA head width

  // MLA (deepseek_v2/v3)
  std::optional<int> q_lora_rank;  // nullopt: direct q_proj
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;

  // DeepSeek Sparse Attention (deepseek_v32): the lightning indexer's heads, head width and the
  // keys each query keeps (attn_dsa.cpp); 0 on other models.
  int index_n_heads = 0;
  int index_head_dim = 0;
  int index_topk = 0;

  // DeepSeekMoE
  int n_routed_experts = 0;  // 0: every layer dense
  int n_shared_experts = 0;
  int num_experts_per_tok = 0;
  int moe_intermediate_size = 0;
  int first_k_dense_replace = 0;
  int moe_layer_freq = 1;
  int n_group = 1;
  int topk_group = 1;
  // Device-limited routing (DeepSeek-V2 2.1.3; aha keys): the experts form n_devices contiguous
  // blocks (one per expert-parallel rank) and a token's experts come from at most topk_devices
  // of them, the blocks holding its highest affinities. topk_devices == n_devices: off.
  int n_devices = 1;
  int topk_devices = 1;
  ScoreFunc scoring_func = ScoreFunc::kSoftmax;
  TopkMethod topk_method = TopkMethod::kGreedy;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  double aux_loss_alpha = 0.0;  // sequence-wise balance loss weight (0: off)
  // DeepSeek-V2's device-level and communication balance losses (2.2.2, 2.2.3; aha keys) over
  // the n_devices blocks, with statistics over the whole batch of a forward (0: off).
  double device_balance_alpha = 0.0;
  double comm_balance_alpha = 0.0;
  bool has_device_balance() const { return device_balance_alpha > 0 || comm_balance_alpha > 0; }

  // DeepSeek-V3 multi-token prediction modules after the main layers (layer ids
  // num_hidden_layers + k); 0: none.
  int num_nextn_predict_layers = 0;

  // Manifold-constrained hyper-connections (DeepSeek-V4): hc_mult residual streams (0: off).
  int hc_mult = 0;
  int hc_sinkhorn_iters = 20;
  double hc_eps = 1e-6;

  // Engram conditional memory in engram->layer_ids (nullopt: none).
  std::optional<EngramConfig> engram;

  std::optional<int> bos_token_id;
  std::optional<int> eos_token_id;

  // LoRA adapters (lora.h): set by the trainer, never read from or written to config.json.
  LoraConfig lora;
  // Expert parallelism: set by the trainer (parallel.ep), never in config.json.
  ExpertParallel ep;

  // The config.json this was read from: keys aha does not use are written back unchanged.
  Json raw = Json::object();

  // Parses an HF config.json; validates every shape relation and throws aha::Error with the key.
  static ModelConfig from_json(const Json& j);
  // path: a config.json; an engram_compression.json beside it is read too.
  static ModelConfig load(const std::string& path);
  Json to_json() const;

  bool is_mla() const {
    return model_type == ModelType::kDeepseekV2 || model_type == ModelType::kDeepseekV3 ||
           model_type == ModelType::kDeepseekV32;
  }
  bool has_indexer() const { return model_type == ModelType::kDeepseekV32; }
  bool is_moe_layer(int layer) const {
    return is_mla() && n_routed_experts > 0 && layer >= first_k_dense_replace &&
           layer % moe_layer_freq == 0;
  }
  bool has_hc() const { return hc_mult > 0; }
  // Values per token in the residual stream: hc_mult streams of hidden_size, or one.
  int residual_width() const { return (has_hc() ? hc_mult : 1) * hidden_size; }
  int qk_head_dim() const { return is_mla() ? qk_nope_head_dim + qk_rope_head_dim : head_dim; }
  int attn_v_dim() const { return is_mla() ? v_head_dim : head_dim; }
  int rope_dim() const { return is_mla() ? qk_rope_head_dim : head_dim; }
  // Softmax scale of attention including YaRN's mscale correction.
  double softmax_scale() const;
  const char* type_name() const;
};

// Engram's token-id compression table beside config.json: {"canonical_vocab_size": V',
// "ids": [canonical id of each token id]}. ModelConfig::load reads it when present.
inline constexpr const char* kEngramCompressionFile = "engram_compression.json";
std::shared_ptr<const std::vector<int32_t>> load_engram_compression(const std::string& path,
                                                                   int vocab_size);
void save_engram_compression(const std::string& path, const std::vector<int32_t>& ids);

}  // namespace aha::policy
