// Tokenizer encode/decode: added-token matching, normalization, the pre-tokenizer sequence and
// byte-level BPE; decode concatenates each id's bytes.
#include <tbb/parallel_for.h>

#include <algorithm>

#include "tokenizer_impl.h"

namespace aha::tokenizer {

namespace detail {
// NFC normalization (tokenizer_normalize.cpp): false when text is already NFC (out untouched).
bool nfc_normalize(std::string_view text, std::string& out);
}  // namespace detail

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

void Tokenizer::Impl::bpe_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_ids[uint8_t(piece[0])]);
    return;
  }
  auto it = piece_ids.find(piece);
  if (it != piece_ids.end()) {
    out.push_back(it->second);
    return;
  }
  thread_local std::vector<int32_t> ids;
  ids.clear();
  for (unsigned char c : piece) ids.push_back(byte_ids[c]);
  detail::bpe_merge(merges, ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

void Tokenizer::Impl::pre_tokenize(std::string_view piece, size_t k,
                                   std::vector<int32_t>& out) const {
  if (k == steps.size()) {
    bpe_piece(piece, out);
    return;
  }
  const detail::PreTokStep& step = steps[k];
  using Kind = detail::PreTokStep::Kind;
  if (step.kind == Kind::kByteLevel) {
    std::string prefixed;
    if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) {
      prefixed = " ";
      prefixed += piece;
      piece = prefixed;
    }
    if (!step.regex) {
      pre_tokenize(piece, k + 1, out);
      return;
    }
  }
  bool keep_delimiters = step.kind != Kind::kSplitRemoved;
  step.regex->split(piece, [&](std::string_view p, bool is_match) {
    if (keep_delimiters || is_match == step.invert) pre_tokenize(p, k + 1, out);
  });
}

void Tokenizer::Impl::encode_segment(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (normalizer == detail::Normalizer::kNfc) {
    std::string normalized;
    if (detail::nfc_normalize(text, normalized)) {
      pre_tokenize(normalized, 0, out);
      return;
    }
  }
  pre_tokenize(text, 0, out);
}

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         (uint8_t(c) & 0x80);
}
}  // namespace

void Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& ids,
                              bool add_special) const {
  const Impl& t = *impl_;
  if (add_special) ids.insert(ids.end(), t.prefix_ids.begin(), t.prefix_ids.end());
  size_t seg_begin = 0, i = 0;
  while (i < text.size()) {
    int32_t index = -1;
    size_t len = t.added_matcher.first_byte[uint8_t(text[i])] ? t.added_matcher.match(text, i, index)
                                                              : 0;
    if (len == 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = t.added[index];
    if (tok.single_word && ((i > 0 && is_word(text[i - 1])) ||
                            (i + len < text.size() && is_word(text[i + len])))) {
      ++i;
      continue;
    }
    size_t seg_end = i;
    if (tok.lstrip)
      while (seg_end > seg_begin && is_space(text[seg_end - 1])) --seg_end;
    t.encode_segment(text.substr(seg_begin, seg_end - seg_begin), ids);
    ids.push_back(tok.id);
    i += len;
    if (tok.rstrip)
      while (i < text.size() && is_space(text[i])) ++i;
    seg_begin = i;
  }
  t.encode_segment(text.substr(seg_begin), ids);
  if (add_special) ids.insert(ids.end(), t.suffix_ids.begin(), t.suffix_ids.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_append(text, ids, add_special);
  return ids;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string> texts,
                                                          bool add_special) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  tbb::parallel_for(size_t(0), texts.size(), [&](size_t i) { out[i] = encode(texts[i], add_special); });
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= t.tokens.size())
      fail("[tokenizer] token id ", id, " out of range [0, ", t.tokens.size(), ")");
    if (skip_special && t.special[id]) continue;
    out += t.bytes[id];
  }
  return out;
}

std::string Tokenizer::decode_utf8(std::span<const int32_t> ids, bool skip_special) const {
  return utf8_replace_invalid(decode(ids, skip_special));
}

int Tokenizer::vocab_size() const { return int(impl_->tokens.size()); }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad; }

const std::string& Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("[tokenizer] token id ", id, " out of range [0, ", vocab_size(), ")");
  return impl_->tokens[id];
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("[tokenizer] token id ", id, " out of range [0, ", vocab_size(), ")");
  return impl_->bytes[id];
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->token_ids.find(std::string(token));
  if (it == impl_->token_ids.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
const std::string& Tokenizer::bos_token() const { return impl_->bos_token; }
const std::string& Tokenizer::eos_token() const { return impl_->eos_token; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_->is_special(id)) return "";
  pending_ += tokenizer_->token_bytes(id);
  // Hold back a trailing lead byte (and its continuation bytes) whose character is unfinished.
  size_t n = pending_.size(), start = n;
  while (start > 0 && n - start < 3 && (uint8_t(pending_[start - 1]) & 0xC0) == 0x80) --start;
  size_t keep = 0;
  if (start > 0) {
    auto lead = uint8_t(pending_[start - 1]);
    size_t need = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 0;
    size_t have = n - (start - 1);
    if (lead >= 0xC2 && need > have) keep = have;
  }
  std::string out = utf8_replace_invalid(std::string_view(pending_).substr(0, n - keep));
  pending_.erase(0, n - keep);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = utf8_replace_invalid(pending_);
  pending_.clear();
  return out;
}

std::string utf8_replace_invalid(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = uint8_t(s[i]);
    int n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                                     : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    size_t k = 1;  // length of the valid prefix of this sequence
    for (; n > 0 && k < size_t(n) && i + k < s.size(); ++k) {
      auto d = uint8_t(s[i + k]);
      uint8_t lo = 0x80, hi = 0xBF;
      if (k == 1 && c == 0xE0) lo = 0xA0;
      if (k == 1 && c == 0xED) hi = 0x9F;
      if (k == 1 && c == 0xF0) lo = 0x90;
      if (k == 1 && c == 0xF4) hi = 0x8F;
      if (d < lo || d > hi) break;
    }
    if (n > 0 && k == size_t(n)) {
      out.append(s.substr(i, n));
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += (n > 0 && k == size_t(n)) ? n : std::max<size_t>(k, 1);
  }
  return out;
}

std::vector<int32_t> known_ids(const Tokenizer& tok, std::span<const int32_t> ids) {
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    if (id >= 0 && id < tok.vocab_size()) out.push_back(id);
  }
  return out;
}

}  // namespace aha::tokenizer
