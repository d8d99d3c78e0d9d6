// Building blocks of byte-level BPE: the GPT-2 byte map, the merge table and the merge loop,
// the PCRE2 regex wrapper and the added-token trie.
#include <algorithm>
#include <climits>
#include <memory>
#include <queue>

#include "tokenizer_impl.h"

namespace aha::tokenizer::detail {

const ByteLevelMap& byte_level_map() {
  static const ByteLevelMap map = [] {
    ByteLevelMap m;
    uint32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      m.byte_to_cp[b] = printable ? uint32_t(b) : extra++;
      append_utf8(m.byte_to_utf8[b], m.byte_to_cp[b]);
      m.cp_to_byte[m.byte_to_cp[b]] = uint8_t(b);
    }
    return m;
  }();
  return map;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Decodes one UTF-8 code point at s[i] (valid input assumed: token strings come from JSON).
static uint32_t next_cp(std::string_view s, size_t& i) {
  auto c = uint8_t(s[i++]);
  if (c < 0x80) return c;
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
  uint32_t cp = c & (0x3F >> extra);
  for (int k = 0; k < extra && i < s.size(); ++k) cp = (cp << 6) | (uint8_t(s[i++]) & 0x3F);
  return cp;
}

bool token_to_bytes(std::string_view token, std::string& bytes) {
  const auto& map = byte_level_map();
  bytes.clear();
  for (size_t i = 0; i < token.size();) {
    auto it = map.cp_to_byte.find(next_cp(token, i));
    if (it == map.cp_to_byte.end()) return false;
    bytes += char(it->second);
  }
  return true;
}

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap *= 2;
  std::vector<Entry> old = std::move(slots_);
  slots_.assign(cap, Entry{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Entry& e : old)
    if (e.key != kEmpty) insert(int32_t(e.key >> 32), int32_t(uint32_t(e.key)), e.rank, e.merged);
}

bool MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  if ((size_ + 1) * 2 > slots_.size()) reserve(size_ + 1);
  uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  size_t i = hash(key) & mask_;
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) return false;
    i = (i + 1) & mask_;
  }
  slots_[i] = Entry{key, rank, merged};
  ++size_;
  return true;
}

// Short pieces: rescan the adjacent pairs after every merge (cache-friendly, no allocation).
static void bpe_merge_small(const MergeTable& merges, std::vector<int32_t>& ids) {
  constexpr int kMax = 64;
  int n = int(ids.size());
  int32_t rank[kMax];
  auto pair_rank = [&](int i) {
    const auto* e = merges.find(ids[i], ids[i + 1]);
    return e ? e->rank : INT_MAX;
  };
  for (int i = 0; i + 1 < n; ++i) rank[i] = pair_rank(i);
  while (n > 1) {
    int best = 0;
    for (int i = 1; i + 1 < n; ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT_MAX) break;
    ids[best] = merges.find(ids[best], ids[best + 1])->merged;
    for (int i = best + 1; i + 1 < n; ++i) ids[i] = ids[i + 1];
    for (int i = best + 1; i + 2 < n; ++i) rank[i] = rank[i + 1];
    --n;
    if (best > 0) rank[best - 1] = pair_rank(best - 1);
    if (best + 1 < n) rank[best] = pair_rank(best);
  }
  ids.resize(n);
}

// Long pieces: a linked list of symbols and a heap of candidate merges, O(n log n).
static void bpe_merge_large(const MergeTable& merges, std::vector<int32_t>& ids) {
  int n = int(ids.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  struct Cand {
    int32_t rank, pos, left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    if (const auto* e = merges.find(ids[i], ids[next[i]])) heap.push({e->rank, i, ids[i], ids[next[i]]});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int j = next[c.pos];
    if (ids[c.pos] != c.left || j < 0 || ids[j] != c.right) continue;  // stale
    ids[c.pos] = merges.find(c.left, c.right)->merged;
    ids[j] = -1;
    next[c.pos] = next[j];
    if (next[j] >= 0) prev[next[j]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  ids.erase(std::remove(ids.begin(), ids.end(), -1), ids.end());
}

void bpe_merge(const MergeTable& merges, std::vector<int32_t>& ids) {
  if (ids.size() <= 64) {
    bpe_merge_small(merges, ids);
  } else {
    bpe_merge_large(merges, ids);
  }
}

// Per-thread PCRE2 scratch: match data with one ovector pair and a JIT stack that grows to 8 MiB
// (long whitespace runs backtrack through `\s+(?!\S)`).
namespace {
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* ctx = pcre2_match_context_create(nullptr);
  MatchScratch() { pcre2_jit_stack_assign(ctx, nullptr, stack); }
  ~MatchScratch() {
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};
MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}
}  // namespace

// PCRE2's UCP `\s` also matches U+180E; HF tokenizers (Oniguruma) use Unicode White_Space.
// Rewrites `\s` / `\S` to explicit White_Space classes so pieces split exactly as in HF.
std::string rewrite_whitespace(const std::string& pattern) {
  static const std::string kWhite =
      "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
      "\\x{202F}\\x{205F}\\x{3000}";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[++i];
      if (e == 's') {
        out += in_class ? kWhite : "[" + kWhite + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + kWhite + "]";
      } else if (e == 'S') {
        fail("[tokenizer] \\S inside a character class is not supported: /", pattern, "/");
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // literal ]
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  std::string rewritten = rewrite_whitespace(pattern);
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
  if (code_ == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    fail("[tokenizer] bad regex at offset ", offset, ": ", reinterpret_cast<char*>(msg), " in /",
         pattern, "/");
  }
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
}

Regex::~Regex() {
  if (code_ != nullptr) pcre2_code_free(code_);
}

bool Regex::find(std::string_view text, size_t start, size_t& match_begin,
                 size_t& match_end) const {
  MatchScratch& s = scratch();
  int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0,
                       s.data, s.ctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof(msg));
    fail("[tokenizer] regex match failed: ", reinterpret_cast<char*>(msg));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.data);
  match_begin = ov[0];
  match_end = ov[1];
  return true;
}

void AddedTokenMatcher::add(std::string_view content, int32_t index) {
  int32_t node = 0;
  for (unsigned char c : content) {
    int32_t child = -1;
    for (auto& [b, n] : nodes[node].next)
      if (b == c) child = n;
    if (child < 0) {
      child = int32_t(nodes.size());
      nodes[node].next.emplace_back(c, child);
      nodes.emplace_back();
    }
    node = child;
  }
  if (nodes[node].token < 0) nodes[node].token = index;  // the first definition wins
  if (!content.empty()) first_byte[uint8_t(content[0])] = true;
}

size_t AddedTokenMatcher::match(std::string_view text, size_t pos, int32_t& index) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    int32_t child = -1;
    for (auto& [b, n] : nodes[node].next)
      if (b == uint8_t(text[i])) child = n;
    if (child < 0) break;
    node = child;
    if (nodes[node].token >= 0) best = i + 1 - pos, index = nodes[node].token;
  }
  return best;
}

}  // namespace aha::tokenizer::detail
