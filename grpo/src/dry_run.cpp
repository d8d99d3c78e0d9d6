// `aha train --dry-run`: validate a run without loading weights.
#include <filesystem>

#include "aha/core/error.h"
#include "aha/datasets/prompt_template.h"
#include "aha/datasets/source.h"
#include "aha/grpo/trainer.h"
#include "aha/policy/model_config.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/rewards/reward.h"

namespace aha::grpo {

namespace fs = std::filesystem;

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
  auto templ = datasets::PromptTemplate::from_config(cfg.data.value("template", "r1_zero"));
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
  return Json{{"ok", true},
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
