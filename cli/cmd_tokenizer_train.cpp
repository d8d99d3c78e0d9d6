// `aha tokenizer train`: learns a byte-level BPE tokenizer from a corpus and writes tokenizer.json
// + tokenizer_config.json into a directory (a checkpoint directory or its future home).
#include <chrono>
#include <iostream>

#include "aha/tokenizer/bpe_trainer.h"
#include "aha/tokenizer/tokenizer.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_tokenizer_train(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  tokenizer::BpeTrainerOptions opt;
  std::string specials;
  desc.add_options()("corpus", po::value<std::string>()->required(),
                     "text file (one text per line) or .jsonl (\"text\" field)")(
      "vocab-size", po::value<int>(&opt.vocab_size)->default_value(opt.vocab_size),
      "total vocabulary: special tokens + 256 bytes + merges")(
      "out", po::value<std::string>()->required(), "output directory")(
      "min-frequency", po::value<int64_t>(&opt.min_frequency)->default_value(opt.min_frequency),
      "never merge a pair seen fewer times")(
      "pre-tokenizer", po::value<std::string>(&opt.pre_tokenizer)->default_value("deepseek"),
      "deepseek | digits | gpt2")(
      "special-tokens", po::value<std::string>(&specials),
      "comma-separated; the first three are BOS, EOS, PAD (default: DeepSeek's)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha tokenizer train --corpus F --vocab-size N --out DIR"))
    return 0;
  if (vm.count("special-tokens")) {
    opt.special_tokens.clear();
    opt.special_tokens = comma_list(specials);
  }
  auto t0 = std::chrono::steady_clock::now();
  std::string out = vm["out"].as<std::string>();
  int n_merges = tokenizer::train_bpe_tokenizer(vm["corpus"].as<std::string>(), out, opt);
  auto tok = tokenizer::Tokenizer::load(out);  // what we wrote must load
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << Json{{"out", out}, {"vocab_size", tok.vocab_size()}, {"merges", n_merges},
                    {"seconds", seconds}}.dump()
            << "\n";
  return 0;
}

}  // namespace aha::cli
