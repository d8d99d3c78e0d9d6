// `aha train --dry-run`: validate a run without loading weights.
#include <filesystem>
#include <map>

#include "aha/core/error.h"
#include "aha/datasets/prompt_template.h"
#include "aha/datasets/source.h"
#include "aha/grpo/trainer.h"
#include "aha/core/safetensors.h"
#include "aha/policy/model.h"
#include "aha/policy/model_config.h"
#include "aha/policy/quantization.h"
#include "aha/tokenizer/chat_template.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/rewards/reward.h"

namespace aha::grpo {

namespace fs = std::filesystem;

namespace {

// What loading the model would read: every tensor the config implies (counted without
// allocating), its modules, and how the checkpoint's files (headers only) match them.
Json model_plan(const policy::ModelConfig& c, const std::string& dir) {
  const policy::ModelLayout layout(c);
  int64_t params = 0, buffers = 0;
  for (const auto& e : layout.table.entries()) (e.trainable ? params : buffers) += int64_t(e.numel);
  std::map<std::string, int> kinds;
  for (const auto& lp : layout.layers) ++kinds[policy::attention_kind_name(lp.attn->kind())];
  int moe_layers = 0;
  for (const auto& lp : layout.layers) moe_layers += lp.moe;
  Json plan = {{"parameters", params},
               {"buffers", buffers},
               {"tensors", layout.table.entries().size()},
               {"attention", kinds},
               {"moe_layers", moe_layers},
               {"mtp_layers", c.num_nextn_predict_layers},
               {"hyper_connections", c.hc_mult}};
  if (c.has_indexer()) {  // DeepSeek Sparse Attention: the lightning indexer of each layer
    Json first_layer = Json::array();
    int64_t n = 0;
    for (const auto& e : layout.table.entries()) {
      if (e.name.find(".self_attn.indexer.") == std::string::npos) continue;
      ++n;
      if (e.name.starts_with("model.layers.0.")) first_layer.push_back({e.name, e.shape});
    }
    plan["indexer"] = {{"index_n_heads", c.index_n_heads}, {"index_head_dim", c.index_head_dim},
                       {"index_topk", c.index_topk}, {"tensors", n}, {"layer_0", first_layer}};
  }
  if (const auto f = policy::fp8_format_of(c.raw)) {
    plan["fp8"] = {{"weight_block_size", {f->block_n, f->block_k}}, {"ue8m0", f->ue8m0}};
  }
  const bool has_weights = fs::exists(fs::path(dir) / "model.safetensors") ||
                           fs::exists(fs::path(dir) / "model.safetensors.index.json");
  if (!has_weights) {
    plan["weights"] = "none found (config only)";
    return plan;
  }
  const TensorArchive ar(dir);
  std::map<std::string, int64_t> dtypes;
  std::vector<std::string> missing, unexpected;
  for (const auto& e : layout.table.entries()) {
    if (!ar.contains(e.name)) {
      missing.push_back(e.name);
    } else {
      ++dtypes[dtype_name(ar.info(e.name).dtype)];
    }
  }
  for (const std::string& name : ar.names()) {
    if (!layout.table.contains(name) && !name.ends_with("_scale_inv")) unexpected.push_back(name);
  }
  auto first = [](std::vector<std::string> v) {
    if (v.size() > 5) v.resize(5);
    return v;
  };
  plan["weights"] = {{"dtypes", dtypes},
                     {"missing", missing.size()},
                     {"first_missing", first(missing)},
                     {"unexpected", unexpected.size()},
                     {"first_unexpected", first(unexpected)}};
  if (!missing.empty()) {
    fail("the checkpoint lacks ", missing.size(), " tensors the config implies, e.g. ",
         missing.front());
  }
  return plan;
}

}  // namespace

Json dry_run(const TrainConfig& cfg) {
  auto model_cfg = policy::ModelConfig::load((fs::path(cfg.model) / "config.json").string());
  if (!cfg.reference.empty()) {
    auto ref = policy::ModelConfig::load((fs::path(cfg.reference) / "config.json").string());
    if (ref.to_json() != model_cfg.to_json() && ref.hidden_size != model_cfg.hidden_size) {
      fail("the reference model's architecture differs from the policy's");
    }
  }
  auto tok = tokenizer::Tokenizer::load(cfg.model);
  if (tok.vocab_size() > model_cfg.vocab_size) {
    fail("the tokenizer has ", tok.vocab_size(), " ids but the model's vocab_size is ",
         model_cfg.vocab_size);
  }
  auto data = datasets::load_examples(cfg.data, "train", cfg.seed);
  auto templ = datasets::PromptTemplate::from_config(
      cfg.data.value("template", "r1_zero"),
      [&] { return tokenizer::chat_prompt_renderer(cfg.model, &tok, cfg.data); });
  size_t longest = 0;
  std::string first;
  const size_t n_check = std::min<size_t>(data.size(), 256);
  for (size_t i = 0; i < n_check; ++i) {
    std::string text = templ.render_row(data[i].row);
    if (i == 0) first = text;
    longest = std::max(longest, tok.encode(text, true).size());
  }
  const int64_t need = static_cast<int64_t>(longest) + cfg.sampling.max_new_tokens;
  if (need > model_cfg.max_position_embeddings) {
    fail("prompts of up to ", longest, " tokens + max_new_tokens ", cfg.sampling.max_new_tokens,
         " exceed the model's context of ", model_cfg.max_position_embeddings);
  }
  auto rewards = rewards::RewardSet::from_json(cfg.rewards, rewards::builtin_registry());
  Json plan = model_plan(model_cfg, cfg.model);
  return Json{{"ok", true},
              {"model", plan},
              {"model_type", model_cfg.type_name()},
              {"layers", model_cfg.num_hidden_layers},
              {"hidden_size", model_cfg.hidden_size},
              {"routed_experts", model_cfg.n_routed_experts},
              {"tokenizer_vocab", tok.vocab_size()},
              {"examples", data.size()},
              {"longest_prompt_tokens_checked", longest},
              {"rewards", rewards.labels()},
              {"first_prompt", first}};
}

}  // namespace aha::grpo
