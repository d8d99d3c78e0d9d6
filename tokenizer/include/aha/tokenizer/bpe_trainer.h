// Byte-level BPE training: learns merges from a text corpus and writes an HF-format
// tokenizer.json (+ tokenizer_config.json) that Tokenizer::load (and HF tokenizers) read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aha/core/config.h"

namespace aha::tokenizer {

struct BpeTrainerOptions {
  int vocab_size = 1024;  // total: special tokens + 256 bytes + merges
  int64_t min_frequency = 2;  // a pair seen fewer times is never merged
  // Added as special tokens with ids 0.. (the first three: BOS, EOS, PAD in tokenizer_config).
  std::vector<std::string> special_tokens = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
                                             "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>"};
  // Pre-tokenizer: "deepseek" (DeepSeek-V3's three Split regexes) or "gpt2".
  std::string pre_tokenizer = "deepseek";
};

// Usage: add texts, then finish(). Not thread-safe; non-copyable.
class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);
  ~BpeTrainer();
  BpeTrainer(const BpeTrainer&) = delete;
  BpeTrainer& operator=(const BpeTrainer&) = delete;

  // Pre-tokenizes text (special tokens in it are cut out) and counts its pieces.
  void add_text(std::string_view text);
  // Learns the merges; returns tokenizer.json. Call once.
  Json finish();
  // The tokenizer_config.json matching finish()'s output (BOS/EOS/PAD, DeepSeek chat template).
  Json tokenizer_config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Trains on the corpus file (plain text: one text per line; .jsonl: the "text" field of each
// line) and writes DIR/tokenizer.json and DIR/tokenizer_config.json. Returns the merge count.
int train_bpe_tokenizer(const std::string& corpus_path, const std::string& out_dir,
                        const BpeTrainerOptions& options);

}  // namespace aha::tokenizer
