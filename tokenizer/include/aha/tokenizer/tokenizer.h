// Byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`):
// the ids aha feeds the model are exactly the ids the checkpoint was trained on.
//
// Supported (see docs/tokenizer.md): model BPE (merges as "a b" strings or ["a","b"] pairs,
// ignore_merges), added tokens (special or not, lstrip/rstrip), normalizers null / Sequence / NFC,
// pre-tokenizers Split (Isolated / Removed, Unicode regexes via PCRE2) and ByteLevel, decoder
// ByteLevel, post-processors ByteLevel / TemplateProcessing / a Sequence of those, BOS/EOS/PAD
// from the config.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aha/core/config.h"

namespace aha::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;      // skipped by decode(..., skip_special=true)
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool normalized = false;
  bool single_word = false;  // only matched at word boundaries
};

// Thread-safety: immutable after load(); encode() and decode() may be called concurrently from
// any number of threads (per-thread regex scratch lives in thread-local storage).
// Move-only: the vocabulary and merge tables are large.
class Tokenizer {
 public:
  // `path` is a checkpoint directory holding tokenizer.json (and optionally
  // tokenizer_config.json), or a tokenizer.json file (its directory is searched for the config).
  static Tokenizer load(const std::string& path);
  // `config` is the parsed tokenizer_config.json, or null.
  static Tokenizer from_json(const Json& tokenizer_json, const Json& config = Json());

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> ids. Added/special tokens written in the text are recognised. add_special adds what
  // the post-processor / tokenizer_config asks for (BOS for DeepSeek and Llama, nothing for Qwen).
  // Any byte string is accepted: invalid UTF-8 bytes become their byte tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false) const;
  // Encodes many texts in parallel on the TBB pool (aha::ThreadLimit caps it); same ids as encode.
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string> texts,
                                                 bool add_special = false) const;
  // Appends to ids (no allocation when ids has room): the hot path for rollouts.
  void encode_append(std::string_view text, std::vector<int32_t>& ids,
                     bool add_special = false) const;

  // Ids -> raw bytes. decode(encode(x)) == x for every byte string x. The result may end inside
  // a UTF-8 character when ids are a prefix of a sequence; see decode_utf8 for display.
  // Throws aha::Error for an id outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // decode() with invalid UTF-8 replaced by U+FFFD (what HF and the JS tokenizers return).
  std::string decode_utf8(std::span<const int32_t> ids, bool skip_special = false) const;

  int vocab_size() const;  // max id + 1 over the vocabulary and the added tokens
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  // The token string as stored in tokenizer.json (byte-level form: "Ġthe"); "" for unused ids.
  const std::string& id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The bytes one token decodes to.
  const std::string& token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const;
  // From tokenizer_config.json: "" when absent.
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& chat_template() const;

  struct Impl;  // opaque (policy/src/tokenizer_impl.h)

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decodes a sequence token by token for streaming output and stop strings: push() returns only
// complete UTF-8 characters, holding back the bytes of a character split across tokens.
// One per sequence; not thread-safe; the Tokenizer must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}
  // The text completed by this token (may be empty). Invalid bytes come out as U+FFFD.
  std::string push(int32_t id);
  // What is still held back (an incomplete character, as U+FFFD); resets the decoder.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;  // at most 3 bytes of an unfinished character
};

// Replaces invalid UTF-8 sequences by U+FFFD (one per maximal invalid subpart, as WHATWG).
std::string utf8_replace_invalid(std::string_view bytes);

// The ids the tokenizer knows: models often have more ids than their tokenizer (padded
// vocabularies), and a sampled padding id has no text.
std::vector<int32_t> known_ids(const Tokenizer& tok, std::span<const int32_t> ids);

}  // namespace aha::tokenizer
