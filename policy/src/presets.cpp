// Preset model configurations and FLOP accounting.
#include "aha/policy/presets.h"

#include "aha/core/error.h"

namespace aha::policy {

namespace {

Json v3_base(int vocab, int d, int layers, int heads) {
  return Json{{"model_type", "deepseek_v3"}, {"vocab_size", vocab}, {"hidden_size", d},
              {"num_hidden_layers", layers}, {"num_attention_heads", heads},
              {"max_position_embeddings", 4096}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0},
              {"rope_scaling", nullptr}, {"first_k_dense_replace", 1}, {"scoring_func", "sigmoid"},
              {"topk_method", "noaux_tc"}, {"norm_topk_prob", true}, {"aux_loss_alpha", 0.0001},
              {"tie_word_embeddings", false}, {"bos_token_id", 0}, {"eos_token_id", 1}};
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"tiny",        "small",    "base",     "tiny-mhc", "small-mhc",
          "tiny-engram", "tiny-v41", "tiny-nsa", "small-dsa"};
}

Json preset_config(const std::string& name) {
  Json j;
  // "<preset>-mhc": the same model with DeepSeek-V4's four hyper-connection streams.
  if (name.ends_with("-mhc") && name != "-mhc") {
    const std::string base = name.substr(0, name.size() - 4);
    if (base == "tiny" || base == "small") {
      j = preset_config(base);
      j.update(Json{{"hc_mult", 4}, {"hc_sinkhorn_iters", 20}, {"hc_eps", 1e-6}});
      return j;
    }
  }
  // "tiny-engram": tiny with Engram in layer 1 (2- and 3-grams, 4 heads of 16 each);
  // "tiny-v41": the same on tiny-mhc's four streams, DeepSeek-V4.1's combination.
  if (name == "tiny-engram" || name == "tiny-v41") {
    j = preset_config(name == "tiny-engram" ? "tiny" : "tiny-mhc");
    j["engram"] = Json{{"max_ngram_size", 3}, {"n_head_per_ngram", 4}, {"n_embed_per_ngram", 64},
                       {"layer_ids", {1}}, {"engram_vocab_size", {2048, 2048}}, {"seed", 0},
                       {"kernel_size", 4}, {"pad_id", 2}};
    return j;
  }
  // "tiny-nsa": a Llama layout of tiny's size with native sparse attention (16-token blocks,
  // 4 selected, a 64-token window), the attention kind NSA is built on.
  if (name == "tiny-nsa") {
    return Json{{"model_type", "llama"}, {"vocab_size", 512}, {"hidden_size", 128},
                {"num_hidden_layers", 4}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                {"intermediate_size", 384}, {"max_position_embeddings", 4096},
                {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0}, {"tie_word_embeddings", false},
                {"bos_token_id", 0}, {"eos_token_id", 1},
                {"nsa", Json{{"block_size", 16}, {"block_counts", 4}, {"window_size", 64}}}};
  }
  // "small-dsa": small as DeepSeek-V3.2 (a 4-head indexer of width 32 keeping 256 keys per
  // query) with a 16k context, for decode at long context.
  if (name == "small-dsa") {
    j = preset_config("small");
    j.update(Json{{"model_type", "deepseek_v32"}, {"index_n_heads", 4}, {"index_head_dim", 32},
                  {"index_topk", 256}, {"max_position_embeddings", 16384}});
    return j;
  }
  if (name == "tiny") {
    j = v3_base(512, 128, 4, 4);
    j.update(Json{{"q_lora_rank", nullptr}, {"kv_lora_rank", 64}, {"qk_nope_head_dim", 32},
                  {"qk_rope_head_dim", 16}, {"v_head_dim", 32}, {"intermediate_size", 256},
                  {"moe_intermediate_size", 64}, {"n_routed_experts", 8}, {"n_shared_experts", 1},
                  {"num_experts_per_tok", 2}, {"n_group", 2}, {"topk_group", 1},
                  {"routed_scaling_factor", 1.0}});
  } else if (name == "small") {
    j = v3_base(2048, 256, 6, 8);
    j.update(Json{{"q_lora_rank", 128}, {"kv_lora_rank", 128}, {"qk_nope_head_dim", 32},
                  {"qk_rope_head_dim", 16}, {"v_head_dim", 32}, {"intermediate_size", 768},
                  {"moe_intermediate_size", 128}, {"n_routed_experts", 16},
                  {"n_shared_experts", 1}, {"num_experts_per_tok", 4}, {"n_group", 4},
                  {"topk_group", 2}, {"routed_scaling_factor", 1.5}});
  } else if (name == "base") {
    j = v3_base(8192, 512, 12, 8);
    j.update(Json{{"q_lora_rank", 256}, {"kv_lora_rank", 256}, {"qk_nope_head_dim", 64},
                  {"qk_rope_head_dim", 32}, {"v_head_dim", 64}, {"intermediate_size", 1536},
                  {"moe_intermediate_size", 256}, {"n_routed_experts", 16},
                  {"n_shared_experts", 1}, {"num_experts_per_tok", 4}, {"n_group", 4},
                  {"topk_group", 2}, {"routed_scaling_factor", 2.0}});
  } else {
    std::string known;
    for (const std::string& p : preset_names()) known += (known.empty() ? "" : ", ") + p;
    fail("unknown preset '", name, "' (known: ", known, ")");
  }
  return j;
}

ForwardFlops forward_flops_parts(const ModelConfig& c, const std::vector<int64_t>& seq_lens) {
  double n = 0, pairs = 0;
  for (int64_t l : seq_lens) {
    n += double(l);
    pairs += double(l) * double(l + 1) / 2;
  }
  const double d = c.hidden_size, H = c.num_attention_heads;
  ForwardFlops f;  // multiply-adds per token first, times 2 n at the end
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    if (c.is_mla()) {
      const double qk = c.qk_head_dim();
      f.attention += c.q_lora_rank ? d * *c.q_lora_rank + *c.q_lora_rank * H * qk : d * H * qk;
      f.attention += d * (c.kv_lora_rank + c.qk_rope_head_dim);
      f.attention += c.kv_lora_rank * H * (c.qk_nope_head_dim + c.v_head_dim);
      f.attention += H * c.v_head_dim * d;
    } else {
      const double hd = c.head_dim, Hk = c.num_key_value_heads;
      f.attention += d * hd * (H + 2 * Hk) + H * hd * d;
    }
    if (c.is_moe_layer(l)) {
      f.ffn += d * c.n_routed_experts;
      f.ffn += 3.0 * d * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts);
    } else {
      f.ffn += 3.0 * d * c.intermediate_size;
    }
  }
  if (c.has_hc()) {  // the weights' projections of the streams: two per layer and the head
    const double m = c.hc_mult;
    f.other += c.num_hidden_layers * 2.0 * ((m + 2) * m * m * d + 2 * m * d) + m * m * d;
  }
  if (c.engram) {  // per Engram layer: a key projection per stream and the value projection
    const double m = c.has_hc() ? c.hc_mult : 1;
    f.other += double(c.engram->layer_ids.size()) * (m + 1) * c.engram->width() * d;
  }
  f.lm_head = d * c.vocab_size;
  const double attn = pairs * H * (c.qk_head_dim() + c.attn_v_dim()) * c.num_hidden_layers;
  f.attention = 2.0 * (f.attention * n + attn);
  f.ffn *= 2.0 * n, f.lm_head *= 2.0 * n, f.other *= 2.0 * n;
  return f;
}

double forward_flops(const ModelConfig& c, const std::vector<int64_t>& seq_lens) {
  return forward_flops_parts(c, seq_lens).total();
}

}  // namespace aha::policy
