// Tiny model configurations shared by the policy tests: every architecture variant aha reads.
#pragma once

#include "aha/core/config.h"
#include "aha/policy/seq_layout.h"

namespace aha::policy::testing {

inline Json tiny_v3_json() {
  return Json{{"model_type", "deepseek_v3"}, {"vocab_size", 37}, {"hidden_size", 16},
              {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 24},
              {"moe_intermediate_size", 8}, {"q_lora_rank", 12}, {"kv_lora_rank", 8},
              {"qk_nope_head_dim", 6}, {"qk_rope_head_dim", 4}, {"v_head_dim", 5},
              {"n_routed_experts", 8}, {"n_shared_experts", 1}, {"num_experts_per_tok", 3},
              {"first_k_dense_replace", 1}, {"n_group", 4}, {"topk_group", 2},
              {"scoring_func", "sigmoid"}, {"topk_method", "noaux_tc"}, {"norm_topk_prob", true},
              {"routed_scaling_factor", 2.5}, {"aux_loss_alpha", 0.01},
              {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-6},
              {"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}, {"beta_fast", 32},
                                {"beta_slow", 1}, {"mscale", 1.0}, {"mscale_all_dim", 1.0},
                                {"original_max_position_embeddings", 16}}}};
}

// DeepSeek-V3.2's sparse attention on the tiny V3 shapes: each query past position 2 keeps 3
// keys chosen by a 2-head indexer of width 8.
inline Json tiny_v32_json(int index_topk = 3) {
  Json j = tiny_v3_json();
  j["model_type"] = "deepseek_v32";
  j["index_n_heads"] = 2;
  j["index_head_dim"] = 8;
  j["index_topk"] = index_topk;
  return j;
}

inline Json tiny_v2_json() {
  return Json{{"model_type", "deepseek_v2"}, {"vocab_size", 41}, {"hidden_size", 16},
              {"num_hidden_layers", 2}, {"num_attention_heads", 3}, {"intermediate_size", 20},
              {"moe_intermediate_size", 6}, {"q_lora_rank", nullptr}, {"kv_lora_rank", 10},
              {"qk_nope_head_dim", 4}, {"qk_rope_head_dim", 6}, {"v_head_dim", 4},
              {"n_routed_experts", 6}, {"n_shared_experts", 2}, {"num_experts_per_tok", 2},
              {"first_k_dense_replace", 0}, {"n_group", 3}, {"topk_group", 2},
              {"scoring_func", "softmax"}, {"topk_method", "group_limited_greedy"},
              {"norm_topk_prob", false}, {"routed_scaling_factor", 1.5},
              {"aux_loss_alpha", 0.001}, {"max_position_embeddings", 64}};
}

inline Json tiny_llama_json() {
  return Json{{"model_type", "llama"}, {"vocab_size", 33}, {"hidden_size", 16},
              {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"intermediate_size", 24}, {"max_position_embeddings", 64},
              {"rope_theta", 10000.0}, {"tie_word_embeddings", true}};
}

inline Json tiny_qwen2_json() {
  return Json{{"model_type", "qwen2"}, {"vocab_size", 35}, {"hidden_size", 12},
              {"num_hidden_layers", 2}, {"num_attention_heads", 3}, {"num_key_value_heads", 1},
              {"intermediate_size", 20}, {"max_position_embeddings", 64},
              {"rope_theta", 1000000.0}, {"tie_word_embeddings", false}};
}

// Qwen2 with its sliding window switched on: layer 0 full attention, layer 1 a window of 3.
inline Json tiny_qwen2_sliding_json() {
  Json j = tiny_qwen2_json();
  j["use_sliding_window"] = true;
  j["sliding_window"] = 3;
  j["max_window_layers"] = 1;
  return j;
}

// DeepSeek-V3 with DeepSeek-V4's hyper-connections: four residual streams.
inline Json tiny_v3_mhc_json() {
  Json j = tiny_v3_json();
  j["hc_mult"] = 4;
  j["hc_sinkhorn_iters"] = 20;
  j["hc_eps"] = 1e-6;
  return j;
}

// Llama (tied embeddings) with two streams and a short Sinkhorn.
inline Json tiny_llama_mhc_json() {
  Json j = tiny_llama_json();
  j["hc_mult"] = 2;
  j["hc_sinkhorn_iters"] = 5;
  return j;
}

// Llama with native sparse attention: blocks of one token (every position a block, so the
// selection ranks blocks by score) or of two (mean-pooled compression), a window of 2.
inline Json tiny_llama_nsa_json(int block_size = 1, int block_counts = 3, int window = 2) {
  Json j = tiny_llama_json();
  j["nsa"] = Json{{"block_size", block_size}, {"block_counts", block_counts},
                  {"window_size", window}};
  return j;
}
inline Json tiny_llama_nsa2_json() { return tiny_llama_nsa_json(2, 2, 3); }

// `base` with `experts` routed experts in `devices` contiguous blocks, `per_token` per token from
// at most `topk_devices` blocks, greedy routing without groups (DeepSeek-V2's device limit).
inline Json device_routing_json(Json base, int experts, int per_token, int devices,
                                int topk_devices) {
  base["n_routed_experts"] = experts;
  base["num_experts_per_tok"] = per_token;
  base["n_group"] = 1;
  base["topk_group"] = 1;
  base["topk_method"] = "greedy";
  base["n_devices"] = devices;
  base["topk_devices"] = topk_devices;
  return base;
}

// Llama with Engram in both layers: 2- and 3-grams, two heads each, a 4-tap conv (dilation 3).
inline Json tiny_llama_engram_json() {
  Json j = tiny_llama_json();
  j["engram"] = Json{{"max_ngram_size", 3}, {"n_head_per_ngram", 2}, {"n_embed_per_ngram", 8},
                     {"layer_ids", {0, 1}}, {"engram_vocab_size", {11, 13}}, {"seed", 3},
                     {"kernel_size", 4}, {"pad_id", 2}};
  return j;
}

// DeepSeek-V4.1 style: hyper-connections (four streams) and Engram in layer 1 (bigrams only,
// three heads, a 3-tap conv of dilation 2).
inline Json tiny_v3_mhc_engram_json() {
  Json j = tiny_v3_mhc_json();
  j["engram"] = Json{{"max_ngram_size", 2}, {"n_head_per_ngram", 3}, {"n_embed_per_ngram", 6},
                     {"layer_ids", {1}}, {"engram_vocab_size", {17}}, {"seed", 0},
                     {"kernel_size", 3}, {"pad_id", 1}};
  return j;
}

// Packed sequences with these boundaries, positions counting from 0 in each.
inline SeqLayout layout_of(const std::vector<int64_t>& starts) {
  SeqLayout l;
  l.seq_starts = starts;
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    for (int64_t t = starts[s]; t < starts[s + 1]; ++t) {
      l.positions.push_back(static_cast<int32_t>(t - starts[s]));
    }
  }
  return l;
}

}  // namespace aha::policy::testing
