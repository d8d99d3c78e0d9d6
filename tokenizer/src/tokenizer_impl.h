// Internals of the byte-level BPE tokenizer shared by tokenizer*.cpp and bpe_trainer.cpp:
// the GPT-2 byte<->unicode map, the merge table, the PCRE2 splitter and Tokenizer::Impl.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "aha/core/error.h"
#include "aha/tokenizer/tokenizer.h"

namespace aha::tokenizer::detail {

// GPT-2's reversible map from the 256 byte values to printable code points ("Ġ" for space).
struct ByteLevelMap {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8{};
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
};
const ByteLevelMap& byte_level_map();

// The raw bytes of a byte-level token; false when a code point is outside the map.
bool token_to_bytes(std::string_view token, std::string& bytes);
void append_utf8(std::string& out, uint32_t cp);

// Open-addressing hash map (left id, right id) -> (rank, merged id).
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t merged = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  void reserve(size_t n);
  // Returns false when the pair is already present (the first, lowest rank, wins).
  bool insert(int32_t left, int32_t right, int32_t rank, int32_t merged);
  const Entry* find(int32_t left, int32_t right) const {
    uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
    size_t i = hash(key) & mask_;
    while (true) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }

 private:
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  std::vector<Entry> slots_ = std::vector<Entry>(16);
  size_t mask_ = 15;
  size_t size_ = 0;
};

// Applies merges in rank order (leftmost first among equal ranks) to ids, in place.
void bpe_merge(const MergeTable& merges, std::vector<int32_t>& ids);

// A compiled Unicode regex (PCRE2, UTF + UCP, JIT). Invalid UTF-8 in the subject never matches.
class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&& o) noexcept : code_(o.code_), pattern_(std::move(o.pattern_)) { o.code_ = nullptr; }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  Regex& operator=(Regex&&) = delete;

  // Finds the next match at or after `start`; false when there is none.
  bool find(std::string_view text, size_t start, size_t& match_begin, size_t& match_end) const;

  // Calls piece(std::string_view, bool is_match) for every gap and every non-empty match, in
  // order, so that the pieces concatenate to text (HF Split with behavior Isolated).
  template <typename F>
  void split(std::string_view text, F&& piece) const {
    size_t pos = 0, prev = 0, mb = 0, me = 0;
    while (pos <= text.size() && find(text, pos, mb, me)) {
      if (me == mb) {  // empty match: step over one character, like JS /u and HF
        pos = mb + 1;
        while (pos < text.size() && (uint8_t(text[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      if (mb > prev) piece(text.substr(prev, mb - prev), false);
      piece(text.substr(mb, me - mb), true);
      prev = pos = me;
    }
    if (prev < text.size()) piece(text.substr(prev), false);
  }
  const std::string& pattern() const { return pattern_; }

 private:
  pcre2_code* code_ = nullptr;
  std::string pattern_;
};

// One step of the pre-tokenizer sequence.
struct PreTokStep {
  enum class Kind { kSplitIsolated, kSplitRemoved, kByteLevel };
  Kind kind = Kind::kSplitIsolated;
  std::unique_ptr<Regex> regex;  // Split pattern, or ByteLevel's GPT-2 regex when use_regex
  bool invert = false;            // Split: the regex matches the pieces, not the delimiters
  bool add_prefix_space = false;  // ByteLevel only
};

// Matches added tokens in raw text: a byte trie, leftmost-longest.
struct AddedTokenMatcher {
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // (byte, child node)
    int32_t token = -1;                              // index into added tokens
  };
  std::vector<Node> nodes = std::vector<Node>(1);
  std::array<bool, 256> first_byte{};
  void add(std::string_view content, int32_t index);
  // Length of the longest added token starting at text[pos] (0: none); sets index.
  size_t match(std::string_view text, size_t pos, int32_t& index) const;
};

enum class Normalizer { kNone, kNfc };

}  // namespace aha::tokenizer::detail

namespace aha::tokenizer {

struct Tokenizer::Impl {
  std::vector<std::string> tokens;  // [vocab_size] byte-level token strings ("" for holes)
  std::vector<std::string> bytes;   // [vocab_size] raw bytes each id decodes to
  std::vector<uint8_t> special;     // [vocab_size] 1 for special added tokens
  std::vector<uint8_t> whole_ok;    // [vocab_size] 1 when BPE of the token's bytes is the token
  std::unordered_map<std::string, int32_t> token_ids;  // token string -> id (vocab + added)
  std::unordered_map<std::string_view, int32_t> piece_ids;  // raw bytes -> model id (views into bytes)
  std::array<int32_t, 256> byte_ids{};                        // single byte -> id
  detail::MergeTable merges;
  bool ignore_merges = false;
  detail::Normalizer normalizer = detail::Normalizer::kNone;
  std::vector<detail::PreTokStep> steps;
  std::vector<AddedToken> added;
  detail::AddedTokenMatcher added_matcher;
  std::vector<int32_t> prefix_ids, suffix_ids;  // added by encode(add_special=true)
  std::optional<int32_t> bos, eos, pad;
  std::string bos_token, eos_token, chat_template;

  void encode_segment(std::string_view text, std::vector<int32_t>& out) const;
  void pre_tokenize(std::string_view piece, size_t step, std::vector<int32_t>& out) const;
  void bpe_piece(std::string_view piece, std::vector<int32_t>& out) const;
};

}  // namespace aha::tokenizer
