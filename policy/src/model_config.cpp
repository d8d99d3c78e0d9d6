// Parsing and validation of HF config.json for deepseek_v2/v3, llama and qwen2.
#include "aha/policy/model_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "aha/policy/attention.h"
#include "aha/policy/quantization.h"
#include "aha/policy/rope.h"

namespace aha::policy {

namespace {

template <typename T>
T get_or(const Json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("[config.json] ", key, ": wrong type (", it->dump(), ")");
  }
}

void require_positive(int v, const char* key) {
  if (v <= 0) fail("[config.json] ", key, " must be positive, got ", v);
}

RopeScaling parse_rope_scaling(const Json& j) {
  RopeScaling rs;
  if (!j.is_object()) fail("[config.json] rope_scaling must be an object or null");
  const std::string type =
      get_or<std::string>(j, "type", get_or<std::string>(j, "rope_type", "none"));
  if (type == "none" || type == "default") {
    rs.type = RopeType::kNone;
  } else if (type == "linear") {
    rs.type = RopeType::kLinear;
  } else if (type == "yarn") {
    rs.type = RopeType::kYarn;
  } else if (type == "llama3") {
    rs.type = RopeType::kLlama3;
  } else {
    fail("[config.json] unsupported rope_scaling type '", type,
         "' (aha supports linear, yarn, llama3)");
  }
  rs.factor = get_or<double>(j, "factor", 1.0);
  const bool scaled = rs.type != RopeType::kNone;
  if (scaled && !(rs.factor > 0)) fail("[config.json] rope_scaling.factor must be > 0");
  rs.beta_fast = get_or<double>(j, "beta_fast", 32.0);
  rs.beta_slow = get_or<double>(j, "beta_slow", 1.0);
  rs.mscale = get_or<double>(j, "mscale", 1.0);
  rs.mscale_all_dim = get_or<double>(j, "mscale_all_dim", 0.0);
  rs.original_max_position_embeddings = get_or<int>(j, "original_max_position_embeddings", 4096);
  rs.low_freq_factor = get_or<double>(j, "low_freq_factor", 1.0);
  rs.high_freq_factor = get_or<double>(j, "high_freq_factor", 4.0);
  // Values that would make the RoPE tables NaN or Inf (1e999 parses as infinity).
  auto finite_positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (scaled && !std::isfinite(rs.factor)) fail("[config.json] rope_scaling.factor must be finite");
  if (rs.type == RopeType::kYarn) {
    if (!finite_positive(rs.beta_fast) || !finite_positive(rs.beta_slow) || rs.beta_fast <= rs.beta_slow) {
      fail("[config.json] rope_scaling needs finite 0 < beta_slow < beta_fast");
    }
    if (!std::isfinite(rs.mscale) || !std::isfinite(rs.mscale_all_dim)) {
      fail("[config.json] rope_scaling.mscale and mscale_all_dim must be finite");
    }
  }
  if (scaled && rs.original_max_position_embeddings <= 0) {
    fail("[config.json] rope_scaling.original_max_position_embeddings must be > 0");
  }
  if (rs.type == RopeType::kLlama3 && (!finite_positive(rs.low_freq_factor) ||
                              !finite_positive(rs.high_freq_factor) ||
                              rs.high_freq_factor <= rs.low_freq_factor)) {
    fail("[config.json] rope_scaling needs finite 0 < low_freq_factor < high_freq_factor");
  }
  return rs;
}

// Device-limited routing: devices are contiguous expert blocks; groups (when also limited) must
// nest inside devices, so that the devices' mask leaves whole groups to choose from.
void parse_device_limit(const Json& j, ModelConfig& c) {
  c.n_devices = get_or<int>(j, "n_devices", 1);
  c.topk_devices = get_or<int>(j, "topk_devices", c.n_devices);
  require_positive(c.n_devices, "n_devices");
  require_positive(c.topk_devices, "topk_devices");
  if (c.n_routed_experts % c.n_devices) fail("[config.json] n_routed_experts % n_devices != 0");
  if (c.topk_devices > c.n_devices) fail("[config.json] topk_devices > n_devices");
  if (c.topk_devices * (c.n_routed_experts / c.n_devices) < c.num_experts_per_tok) {
    fail("[config.json] topk_devices devices hold fewer experts than num_experts_per_tok");
  }
  if (c.topk_devices < c.n_devices && c.topk_method != TopkMethod::kGreedy && c.n_group > 1) {
    if (c.n_group % c.n_devices) {
      fail("[config.json] n_group % n_devices != 0 (groups nest in devices)");
    }
    if (c.topk_group > c.topk_devices * (c.n_group / c.n_devices)) {
      fail("[config.json] topk_group > the groups of topk_devices devices");
    }
  }
  // With one device both losses are constants (f' = 1, P' = 1): a set alpha would do nothing.
  for (auto [key, alpha] : {std::pair{"device_balance_alpha", &c.device_balance_alpha},
                            std::pair{"comm_balance_alpha", &c.comm_balance_alpha}}) {
    *alpha = get_or<double>(j, key, 0.0);
    if (!std::isfinite(*alpha) || *alpha < 0) {
      fail("[config.json] ", key, " must be a finite number >= 0, got ", *alpha);
    }
    if (*alpha > 0 && c.n_devices < 2) fail("[config.json] ", key, " > 0 needs n_devices >= 2");
  }
}

// DeepSeekMoE: experts, routing (scoring function, top-k method, groups) and the balance loss.
void parse_moe(const Json& j, ModelConfig& c) {
  c.n_shared_experts = get_or<int>(j, "n_shared_experts", 0);
  c.num_experts_per_tok = get_or<int>(j, "num_experts_per_tok", 0);
  c.moe_intermediate_size = get_or<int>(j, "moe_intermediate_size", 0);
  c.n_group = get_or<int>(j, "n_group", 1);
  c.topk_group = get_or<int>(j, "topk_group", 1);
  c.norm_topk_prob = get_or<bool>(j, "norm_topk_prob", false);
  c.routed_scaling_factor = get_or<double>(j, "routed_scaling_factor", 1.0);
  c.aux_loss_alpha = get_or<double>(j, "aux_loss_alpha", 0.0);
  if (c.n_shared_experts < 0) fail("[config.json] n_shared_experts must be >= 0");
  require_positive(c.num_experts_per_tok, "num_experts_per_tok");
  require_positive(c.moe_intermediate_size, "moe_intermediate_size");
  require_positive(c.n_group, "n_group");
  require_positive(c.topk_group, "topk_group");
  if (c.num_experts_per_tok > c.n_routed_experts) {
    fail("[config.json] num_experts_per_tok ", c.num_experts_per_tok, " > n_routed_experts ",
         c.n_routed_experts);
  }
  if (c.n_routed_experts % c.n_group) fail("[config.json] n_routed_experts % n_group != 0");
  if (c.topk_group > c.n_group) fail("[config.json] topk_group > n_group");
  std::string sf = get_or<std::string>(j, "scoring_func", "softmax");
  if (sf == "softmax") {
    c.scoring_func = ScoreFunc::kSoftmax;
  } else if (sf == "sigmoid") {
    c.scoring_func = ScoreFunc::kSigmoid;
  } else {
    fail("[config.json] unknown scoring_func '", sf, "'");
  }
  std::string tm = get_or<std::string>(j, "topk_method", "greedy");
  if (tm == "greedy" || tm == "gready") {  // "gready" is the HF DeepSeek-V2 default spelling
    c.topk_method = TopkMethod::kGreedy;
  } else if (tm == "group_limited_greedy") {
    c.topk_method = TopkMethod::kGroupLimitedGreedy;
  } else if (tm == "noaux_tc") {
    c.topk_method = TopkMethod::kNoauxTc;
  } else {
    fail("[config.json] unknown topk_method '", tm, "'");
  }
  if (c.topk_method == TopkMethod::kNoauxTc && c.n_routed_experts / c.n_group < 2) {
    fail("[config.json] noaux_tc needs at least 2 experts per group");
  }
  if (c.topk_method != TopkMethod::kGreedy &&
      c.topk_group * (c.n_routed_experts / c.n_group) < c.num_experts_per_tok) {
    fail("[config.json] topk_group groups hold fewer experts than num_experts_per_tok");
  }
  parse_device_limit(j, c);
}

// V3.2's lightning indexer: its query comes from MLA's query latent, and its RoPE covers the
// first qk_rope_head_dim of its head.
void parse_indexer(const Json& j, ModelConfig& c) {
  c.index_n_heads = get_or<int>(j, "index_n_heads", 0);
  c.index_head_dim = get_or<int>(j, "index_head_dim", 0);
  c.index_topk = get_or<int>(j, "index_topk", 0);
  require_positive(c.index_n_heads, "index_n_heads");
  require_positive(c.index_head_dim, "index_head_dim");
  require_positive(c.index_topk, "index_topk");
  if (!c.q_lora_rank) fail("[config.json] q_lora_rank: deepseek_v32's indexer needs a q latent");
  if (c.index_head_dim < c.qk_rope_head_dim) {
    fail("[config.json] index_head_dim must be >= qk_rope_head_dim (", c.qk_rope_head_dim, ")");
  }
}

void parse_mla(const Json& j, ModelConfig& c) {
  if (j.contains("q_lora_rank") && !j["q_lora_rank"].is_null()) {
    c.q_lora_rank = get_or<int>(j, "q_lora_rank", 0);
    require_positive(*c.q_lora_rank, "q_lora_rank");
  }
  c.kv_lora_rank = get_or<int>(j, "kv_lora_rank", 0);
  c.qk_nope_head_dim = get_or<int>(j, "qk_nope_head_dim", 0);
  c.qk_rope_head_dim = get_or<int>(j, "qk_rope_head_dim", 0);
  c.v_head_dim = get_or<int>(j, "v_head_dim", 0);
  require_positive(c.kv_lora_rank, "kv_lora_rank");
  require_positive(c.qk_nope_head_dim, "qk_nope_head_dim");
  require_positive(c.qk_rope_head_dim, "qk_rope_head_dim");
  require_positive(c.v_head_dim, "v_head_dim");
  if (c.qk_rope_head_dim % 2) fail("[config.json] qk_rope_head_dim must be even");
  c.num_key_value_heads = c.num_attention_heads;
  c.n_routed_experts = get_or<int>(j, "n_routed_experts", 0);
  c.first_k_dense_replace = get_or<int>(j, "first_k_dense_replace", 0);
  c.moe_layer_freq = get_or<int>(j, "moe_layer_freq", 1);
  require_positive(c.moe_layer_freq, "moe_layer_freq");
  if (c.first_k_dense_replace < 0) fail("[config.json] first_k_dense_replace must be >= 0");
  if (c.n_routed_experts > 0) parse_moe(j, c);
  if (c.first_k_dense_replace > 0 || c.n_routed_experts == 0) {
    require_positive(c.intermediate_size, "intermediate_size");
  }
  if (c.has_indexer()) parse_indexer(j, c);
}

void parse_gqa(const Json& j, ModelConfig& c) {
  c.head_dim = get_or<int>(j, "head_dim", c.hidden_size / c.num_attention_heads);
  require_positive(c.head_dim, "head_dim");
  require_positive(c.num_key_value_heads, "num_key_value_heads");
  require_positive(c.intermediate_size, "intermediate_size");
  if (c.head_dim % 2) fail("[config.json] head_dim must be even");
  if (c.num_attention_heads % c.num_key_value_heads) {
    fail("[config.json] num_attention_heads must be a multiple of num_key_value_heads");
  }
}

void parse_hc(const Json& j, ModelConfig& c) {
  if (!j.contains("hc_mult") || j["hc_mult"].is_null()) return;
  c.hc_mult = get_or<int>(j, "hc_mult", 0);
  if (c.hc_mult < 1 || c.hc_mult > 16) {
    fail("[config.json] hc_mult must be between 1 and 16 (the number of residual streams), got ",
         c.hc_mult);
  }
  c.hc_sinkhorn_iters = get_or<int>(j, "hc_sinkhorn_iters", 20);
  if (c.hc_sinkhorn_iters < 1 || c.hc_sinkhorn_iters > 1000) {
    fail("[config.json] hc_sinkhorn_iters must be between 1 and 1000, got ", c.hc_sinkhorn_iters);
  }
  c.hc_eps = get_or<double>(j, "hc_eps", 1e-6);
  if (!(c.hc_eps > 0) || !std::isfinite(c.hc_eps) || c.hc_eps > 1) {
    fail("[config.json] hc_eps must be in (0, 1]");
  }
}

// The "engram" object; every bad value names its key.
void parse_engram(const Json& j, ModelConfig& c) {
  auto it = j.find("engram");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_object()) fail("[config.json] engram must be an object");
  const Json& e = *it;
  auto integer = [&](const char* key, int64_t lo, int64_t hi, int64_t fallback) {
    auto v = e.find(key);
    if (v == e.end()) return fallback;
    if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi) {
      fail("[config.json] engram.", key, " must be an integer in [", lo, ", ", hi, "], got ",
           v->dump());
    }
    return v->get<int64_t>();
  };
  EngramConfig g;
  g.max_ngram_size = static_cast<int>(integer("max_ngram_size", 2, 8, 3));
  g.n_head_per_ngram = static_cast<int>(integer("n_head_per_ngram", 1, 64, 8));
  g.n_embed_per_ngram = static_cast<int>(integer("n_embed_per_ngram", 1, 1 << 16, 512));
  if (g.n_embed_per_ngram % g.n_head_per_ngram) {
    fail("[config.json] engram.n_embed_per_ngram (", g.n_embed_per_ngram,
         ") must be a multiple of engram.n_head_per_ngram (", g.n_head_per_ngram, ")");
  }
  g.seed = integer("seed", 0, int64_t{1} << 40, 0);
  g.kernel_size = static_cast<int>(integer("kernel_size", 1, 16, 4));
  g.pad_id = static_cast<int>(integer("pad_id", 0, c.vocab_size - 1, 2));
  auto ids = e.find("layer_ids");
  if (ids == e.end() || !ids->is_array() || ids->empty()) {
    fail("[config.json] engram.layer_ids must be a non-empty list of layer indices");
  }
  for (const Json& v : *ids) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.num_hidden_layers) {
      fail("[config.json] engram.layer_ids: ", v.dump(), " is not a layer in [0, ",
           c.num_hidden_layers, ")");
    }
    const int l = v.get<int>();
    if (g.in_layer(l)) fail("[config.json] engram.layer_ids: layer ", l, " listed twice");
    g.layer_ids.push_back(l);
  }
  auto sizes = e.find("engram_vocab_size");
  if (sizes == e.end() || !sizes->is_array() ||
      static_cast<int>(sizes->size()) != g.max_ngram_size - 1) {
    fail("[config.json] engram.engram_vocab_size must list one table size per n = 2..",
         g.max_ngram_size, " (", g.max_ngram_size - 1, " values)");
  }
  for (const Json& v : *sizes) {
    if (!v.is_number_integer() || v.get<int64_t>() < 2 || v.get<int64_t>() > (int64_t{1} << 31)) {
      fail("[config.json] engram.engram_vocab_size: ", v.dump(), " is not in [2, 2^31]");
    }
    g.engram_vocab_size.push_back(v.get<int64_t>());
  }
  auto freeze = e.find("freeze_table");
  if (freeze != e.end()) {
    if (!freeze->is_boolean()) fail("[config.json] engram.freeze_table must be true or false");
    g.freeze_table = freeze->get<bool>();
  }
  for (const auto& [key, v] : e.items()) {
    static const char* kKeys[] = {"max_ngram_size", "n_head_per_ngram", "n_embed_per_ngram",
                                  "layer_ids",      "engram_vocab_size", "seed",
                                  "kernel_size",    "pad_id",            "freeze_table"};
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      fail("[config.json] engram.", key, ": unknown key");
    }
  }
  c.engram = std::move(g);
}

const char* model_type_name(ModelType t) {
  switch (t) {
    case ModelType::kDeepseekV2: return "deepseek_v2";
    case ModelType::kDeepseekV3: return "deepseek_v3";
    case ModelType::kDeepseekV32: return "deepseek_v32";
    case ModelType::kLlama: return "llama";
    case ModelType::kQwen2: return "qwen2";
  }
  return nullptr;  // past the last ModelType (an enum class holds any int)
}

// The inverse of model_type_name, over the types in their order.
ModelType parse_model_type(const Json& j) {
  const std::string type = get_or<std::string>(j, "model_type", "");
  std::string supported = "aha supports ";
  for (int i = 0; model_type_name(static_cast<ModelType>(i)) != nullptr; ++i) {
    const auto t = static_cast<ModelType>(i);
    if (type == model_type_name(t)) return t;
    supported += (i == 0 ? "" : ", ") + std::string(model_type_name(t));
  }
  if (type == "deepseek_v4") {
    fail("[config.json] model_type 'deepseek_v4': DeepSeek-V4's compressed sparse attention is "
         "not supported yet (", supported, "; hyper-connections through hc_mult)");
  }
  fail("[config.json] unknown model_type '", type, "' (", supported, ")");
}

}  // namespace

bool EngramConfig::in_layer(int l) const {
  return std::find(layer_ids.begin(), layer_ids.end(), l) != layer_ids.end();
}

ModelConfig ModelConfig::from_json(const Json& j) {
  if (!j.is_object()) fail("[config.json] expected a JSON object");
  ModelConfig c;
  c.raw = j;
  fp8_format_of(j);  // an unknown quantization_config fails here, not at the first weight
  c.model_type = parse_model_type(j);
  c.vocab_size = get_or<int>(j, "vocab_size", 0);
  c.hidden_size = get_or<int>(j, "hidden_size", 0);
  c.num_hidden_layers = get_or<int>(j, "num_hidden_layers", 0);
  c.num_attention_heads = get_or<int>(j, "num_attention_heads", 0);
  c.num_key_value_heads = get_or<int>(j, "num_key_value_heads", c.num_attention_heads);
  c.intermediate_size = get_or<int>(j, "intermediate_size", 0);
  c.max_position_embeddings = get_or<int>(j, "max_position_embeddings", 4096);
  c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6);
  c.rope_theta = get_or<double>(j, "rope_theta", 10000.0);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    c.rope_scaling = parse_rope_scaling(j["rope_scaling"]);
  }
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
  c.attention_bias = c.model_type == ModelType::kQwen2 || get_or<bool>(j, "attention_bias", false);
  if (c.is_mla() && get_or<bool>(j, "attention_bias", false)) {
    fail("[config.json] attention_bias is not supported for MLA models");
  }
  std::string act = get_or<std::string>(j, "hidden_act", "silu");
  if (act != "silu") fail("[config.json] hidden_act '", act, "' is not supported (silu only)");
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) {
    c.bos_token_id = j["bos_token_id"].get<int>();
  }
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) {
    c.eos_token_id = j["eos_token_id"].get<int>();
  }
  require_positive(c.vocab_size, "vocab_size");
  require_positive(c.hidden_size, "hidden_size");
  require_positive(c.num_hidden_layers, "num_hidden_layers");
  if (c.num_hidden_layers > 1024) {  // DeepSeek-V3 has 61; a million would take minutes to lay out
    fail("[config.json] num_hidden_layers must be at most 1024, got ", c.num_hidden_layers);
  }
  require_positive(c.num_attention_heads, "num_attention_heads");
  require_positive(c.max_position_embeddings, "max_position_embeddings");
  if (!(c.rms_norm_eps > 0)) fail("[config.json] rms_norm_eps must be > 0");
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) {
    fail("[config.json] rope_theta must be finite and > 0");
  }

  if (c.is_mla()) {
    parse_mla(j, c);
  } else {
    parse_gqa(j, c);
  }
  parse_hc(j, c);
  parse_engram(j, c);
  c.num_nextn_predict_layers = get_or<int>(j, "num_nextn_predict_layers", 0);
  if (c.num_nextn_predict_layers < 0 || c.num_nextn_predict_layers > 8) {
    fail("[config.json] num_nextn_predict_layers must be in [0, 8] (DeepSeek-V3 ships 1), got ",
         c.num_nextn_predict_layers);
  }

  if (c.num_nextn_predict_layers > 0 && (!c.is_mla() || c.has_hc())) {
    fail("[config.json] num_nextn_predict_layers: MTP is supported on deepseek_v2/v3 models "
         "without hyper-connections");
  }
  nsa_options(c);  // an "nsa" object is checked here, not at the first layer
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  ModelConfig c = from_json(load_json_file(path));
  if (c.engram) {  // the token-id compression table lives beside config.json
    const auto side = std::filesystem::path(path).parent_path() / kEngramCompressionFile;
    if (std::filesystem::exists(side)) c.engram->compression = load_engram_compression(side.string(), c.vocab_size);
  }
  return c;
}

std::shared_ptr<const std::vector<int32_t>> load_engram_compression(const std::string& path,
                                                                   int vocab_size) {
  const Json j = load_json_file(path);
  auto ids = j.find("ids");
  if (ids == j.end() || !ids->is_array() || static_cast<int>(ids->size()) != vocab_size) {
    fail("[", path, "] ids must list one canonical id per token (", vocab_size, ")");
  }
  auto table = std::make_shared<std::vector<int32_t>>();
  for (const Json& v : *ids) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab_size) {
      fail("[", path, "] ids: ", v.dump(), " is not in [0, ", vocab_size, ")");
    }
    table->push_back(v.get<int32_t>());
  }
  return table;
}

void save_engram_compression(const std::string& path, const std::vector<int32_t>& ids) {
  int32_t n = 0;
  for (int32_t v : ids) n = std::max(n, v + 1);
  save_json_file(path, Json{{"canonical_vocab_size", n}, {"ids", ids}});
}

const char* rope_type_name(RopeType type) {
  switch (type) {
    case RopeType::kNone: return "none";
    case RopeType::kLinear: return "linear";
    case RopeType::kYarn: return "yarn";
    case RopeType::kLlama3: return "llama3";
  }
  return "?";
}

const char* ModelConfig::type_name() const {
  const char* name = model_type_name(model_type);
  return name != nullptr ? name : "?";
}

double ModelConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling.type == RopeType::kYarn && rope_scaling.mscale_all_dim != 0.0) {
    double m = yarn_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

namespace {

// HF's rope_scaling object (null when RoPE is unscaled).
Json rope_scaling_json(const RopeScaling& r) {
  if (r.type == RopeType::kNone) return nullptr;
  Json rs = {{"type", rope_type_name(r.type)}, {"factor", r.factor}};
  if (r.type == RopeType::kYarn) {
    rs["beta_fast"] = r.beta_fast;
    rs["beta_slow"] = r.beta_slow;
    rs["mscale"] = r.mscale;
    rs["mscale_all_dim"] = r.mscale_all_dim;
    rs["original_max_position_embeddings"] = r.original_max_position_embeddings;
  } else if (r.type == RopeType::kLlama3) {
    rs["rope_type"] = "llama3";
    rs["low_freq_factor"] = r.low_freq_factor;
    rs["high_freq_factor"] = r.high_freq_factor;
    rs["original_max_position_embeddings"] = r.original_max_position_embeddings;
  }
  return rs;
}

// The MLA and DeepSeekMoE keys of DeepSeek's config.json.
void write_mla_keys(const ModelConfig& c, Json& j) {
  j["q_lora_rank"] = c.q_lora_rank ? Json(*c.q_lora_rank) : Json(nullptr);
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  j["v_head_dim"] = c.v_head_dim;
  if (c.has_indexer()) {
    j["index_n_heads"] = c.index_n_heads;
    j["index_head_dim"] = c.index_head_dim;
    j["index_topk"] = c.index_topk;
  }
  j["attention_bias"] = false;
  j["first_k_dense_replace"] = c.first_k_dense_replace;
  j["moe_layer_freq"] = c.moe_layer_freq;
  j["n_routed_experts"] = c.n_routed_experts > 0 ? Json(c.n_routed_experts) : Json(nullptr);
  if (c.n_routed_experts > 0) {
    j["n_shared_experts"] = c.n_shared_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
    if (c.n_devices > 1) {
      j["n_devices"] = c.n_devices;
      j["topk_devices"] = c.topk_devices;
    }
    if (c.device_balance_alpha > 0) j["device_balance_alpha"] = c.device_balance_alpha;
    if (c.comm_balance_alpha > 0) j["comm_balance_alpha"] = c.comm_balance_alpha;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["routed_scaling_factor"] = c.routed_scaling_factor;
    j["aux_loss_alpha"] = c.aux_loss_alpha;
    j["seq_aux"] = true;
    j["scoring_func"] = c.scoring_func == ScoreFunc::kSoftmax ? "softmax" : "sigmoid";
    j["topk_method"] = c.topk_method == TopkMethod::kGreedy ? "greedy"
                       : c.topk_method == TopkMethod::kGroupLimitedGreedy ? "group_limited_greedy"
                                                                        : "noaux_tc";
  }
}

}  // namespace

Json ModelConfig::to_json() const {
  Json j = raw.is_object() ? raw : Json::object();
  j["model_type"] = type_name();
  j["architectures"] = {is_mla() ? (model_type == ModelType::kDeepseekV2   ? "DeepseekV2ForCausalLM"
                                    : model_type == ModelType::kDeepseekV3 ? "DeepseekV3ForCausalLM"
                                                                           : "DeepseekV32ForCausalLM")
                                 : (model_type == ModelType::kLlama ? "LlamaForCausalLM"
                                                                    : "Qwen2ForCausalLM")};
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (!j.contains("torch_dtype")) j["torch_dtype"] = "float32";
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_id) j["eos_token_id"] = *eos_token_id;
  j["rope_scaling"] = rope_scaling_json(rope_scaling);
  if (num_nextn_predict_layers > 0) j["num_nextn_predict_layers"] = num_nextn_predict_layers;
  if (has_hc()) {
    j["hc_mult"] = hc_mult;
    j["hc_sinkhorn_iters"] = hc_sinkhorn_iters;
    j["hc_eps"] = hc_eps;
  }
  if (engram) {
    j["engram"] = Json{{"max_ngram_size", engram->max_ngram_size},
                       {"n_head_per_ngram", engram->n_head_per_ngram},
                       {"n_embed_per_ngram", engram->n_embed_per_ngram},
                       {"layer_ids", engram->layer_ids},
                       {"engram_vocab_size", engram->engram_vocab_size},
                       {"seed", engram->seed},
                       {"kernel_size", engram->kernel_size},
                       {"pad_id", engram->pad_id},
                       {"freeze_table", engram->freeze_table}};
  }
  if (is_mla()) {
    write_mla_keys(*this, j);
  } else {
    j["head_dim"] = head_dim;
    j["attention_bias"] = attention_bias;
  }
  return j;
}

}  // namespace aha::policy
