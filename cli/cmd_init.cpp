// `aha init`: a random-initialised checkpoint from a config.json or a built-in preset.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "aha/core/dtype.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/presets.h"
#include "aha/tokenizer/canonical.h"
#include "aha/tokenizer/tokenizer.h"
#include "commands.h"
#include "options.h"
#include "save_format.h"

namespace aha::cli {

int cmd_init(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string config, preset, out, tokenizer, dtype, fp8_block, fp8_scale_fmt;
  uint64_t seed = 0;
  double init_std = 0.02;
  desc.add_options()
      ("config", po::value(&config), "HF config.json of the model")
      ("preset", po::value(&preset), "built-in config instead: tiny | small | base | tiny-mhc | small-mhc | tiny-engram | tiny-v41 | tiny-nsa | small-dsa")
      ("out", po::value(&out)->required(), "checkpoint directory to write")
      ("seed", po::value(&seed)->default_value(0), "initialisation seed")
      ("std", po::value(&init_std)->default_value(0.02, "0.02"), "std of the normal init")
      ("tokenizer", po::value(&tokenizer), "directory (or tokenizer.json) to copy along")
      ("dtype", po::value(&dtype)->default_value("F32"), kDtypeHelp)
      ("fp8-block", po::value(&fp8_block), kFp8BlockHelp)
      ("fp8-scale-fmt", po::value(&fp8_scale_fmt), kFp8ScaleHelp);
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha init (--config CFG.json | --preset NAME) --out DIR [--seed N]")) {
    return 0;
  }
  if (config.empty() == preset.empty()) fail("give exactly one of --config and --preset");
  Json j = config.empty() ? policy::preset_config(preset) : load_json_file(config);
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (!tokenizer.empty()) tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(tokenizer));
  if (tok && !preset.empty()) {
    // A preset fits itself to the tokenizer: its vocabulary and special tokens.
    j["vocab_size"] = tok->vocab_size();
    if (tok->bos_id()) j["bos_token_id"] = *tok->bos_id();
    if (tok->eos_id()) j["eos_token_id"] = *tok->eos_id();
  }
  policy::ModelConfig cfg = policy::ModelConfig::from_json(j);
  if (tok && tok->vocab_size() > cfg.vocab_size) {
    fail("the tokenizer has ", tok->vocab_size(), " ids but the model's vocab_size is ",
         cfg.vocab_size);
  }
  if (cfg.engram && tok) {  // Engram hashes canonical ids of the tokenizer's normalised texts
    cfg.engram->compression = std::make_shared<const std::vector<int32_t>>(
        tokenizer::engram_canonical_ids(*tok, cfg.vocab_size));
  }
  policy::SaveOptions opts = save_options_for(dtype, fp8_block, fp8_scale_fmt, j);
  policy::Model<float> model(cfg);
  model.init_random(seed, init_std);
  if (!tokenizer.empty()) {
    namespace fs = std::filesystem;
    opts.copy_tokenizer_from = fs::is_directory(tokenizer)
                                   ? tokenizer
                                   : fs::path(tokenizer).parent_path().string();
    if (!fs::exists(fs::path(opts.copy_tokenizer_from) / "tokenizer.json")) {
      fail("--tokenizer: no tokenizer.json in ", opts.copy_tokenizer_from);
    }
  }
  policy::save_model(model, out, opts);
  spdlog::info("wrote {} ({}, {} parameters) to {}", cfg.type_name(),
               preset.empty() ? config : preset, model.n_params(), out);
  return 0;
}

}  // namespace aha::cli
