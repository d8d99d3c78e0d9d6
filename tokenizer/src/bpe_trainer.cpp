// Byte-level BPE trainer: counts pre-tokenized pieces, then repeatedly merges the most frequent
// adjacent pair (ties: lowest ids first) with incremental pair counts and a lazy max-heap.
#include "aha/tokenizer/bpe_trainer.h"

#include <filesystem>
#include <queue>
#include <unordered_map>

#include "aha/core/fileio.h"
#include "tokenizer_impl.h"

namespace aha::tokenizer {

namespace {

// DeepSeek-V3's pre-tokenizer: digits in runs of at most 3, CJK runs, then words/punctuation.
const std::vector<std::string> kDeepSeekSplits = {
    R"re(\p{N}{1,3})re",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
};
// As DeepSeek's, but every digit alone (like Qwen2/Llama-3 style digit splitting): arithmetic
// then sees single digits, which small models learn far more easily.
const std::vector<std::string> kDigitSplits = {
    R"re(\p{N})re", kDeepSeekSplits[1], kDeepSeekSplits[2]};
const std::vector<std::string> kGpt2Splits = {
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re"};

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

struct HeapEntry {
  int64_t count;
  int32_t a, b;
  bool operator<(const HeapEntry& o) const {  // max-heap: larger count, then smaller ids
    if (count != o.count) return count < o.count;
    return a != o.a ? a > o.a : b > o.b;
  }
};

}  // namespace

struct BpeTrainer::Impl {
  BpeTrainerOptions opt;
  std::vector<detail::Regex> splits;
  std::unordered_map<std::string, int64_t> counts;  // pre-tokenized piece -> occurrences

  void count(std::string_view piece, size_t k) {
    if (k == splits.size()) {
      ++counts[std::string(piece)];
      return;
    }
    splits[k].split(piece, [&](std::string_view p, bool) { count(p, k + 1); });
  }
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  const auto& o = impl_->opt;
  if (o.pre_tokenizer != "deepseek" && o.pre_tokenizer != "gpt2" && o.pre_tokenizer != "digits")
    fail("[bpe_trainer] pre_tokenizer must be deepseek, digits or gpt2, not '", o.pre_tokenizer,
         "'");
  int min_vocab = int(o.special_tokens.size()) + 256;
  if (o.vocab_size < min_vocab)
    fail("[bpe_trainer] vocab_size ", o.vocab_size, " < ", min_vocab,
         " (special tokens + 256 byte tokens)");
  for (const auto& p : o.pre_tokenizer == "deepseek" ? kDeepSeekSplits
                       : o.pre_tokenizer == "digits" ? kDigitSplits
                                                     : kGpt2Splits)
    impl_->splits.emplace_back(p);
}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::add_text(std::string_view text) {
  // Cut special tokens out so that they are never learned as merges.
  size_t begin = 0;
  while (begin < text.size()) {
    size_t best = std::string_view::npos, best_len = 0;
    for (const auto& s : impl_->opt.special_tokens) {
      size_t at = text.find(s, begin);
      if (at < best) best = at, best_len = s.size();
    }
    size_t end = best == std::string_view::npos ? text.size() : best;
    if (end > begin) impl_->count(text.substr(begin, end - begin), 0);
    begin = end + best_len;
  }
}

namespace {

// The words being merged (symbol ids), their frequencies, the count of every adjacent pair, which
// words hold each pair, and a lazy max-heap of (count, pair).
struct MergeState {
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  std::priority_queue<HeapEntry> heap;
  std::vector<int32_t> seen;  // last merge step that visited each word
  std::unordered_map<uint64_t, bool> touched;

  MergeState(const std::unordered_map<std::string, int64_t>& counts, int32_t first_byte_id) {
    for (const auto& [piece, c] : counts) {
      std::vector<int32_t> w;
      for (unsigned char ch : piece) w.push_back(first_byte_id + ch);
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        pair_count[pair_key(w[i], w[i + 1])] += c;
        where[pair_key(w[i], w[i + 1])].push_back(int32_t(words.size()));
      }
      words.push_back(std::move(w));
      freq.push_back(c);
    }
    for (const auto& [k, c] : pair_count) heap.push({c, int32_t(k >> 32), int32_t(uint32_t(k))});
    seen.assign(words.size(), -1);
  }

  // The most frequent live pair, or count 0 when none is left.
  HeapEntry pop_best() {
    while (!heap.empty()) {
      HeapEntry top = heap.top();
      heap.pop();
      if (top.count > 0 && pair_count[pair_key(top.a, top.b)] == top.count) return top;
    }
    return {0, -1, -1};
  }

  void change(int32_t a, int32_t b, int64_t delta, int32_t word) {
    uint64_t k = pair_key(a, b);
    pair_count[k] += delta;
    if (delta > 0) where[k].push_back(word);
    touched[k] = true;
  }

  // Replaces every (a, b) by m in the words holding it, updating the neighbouring pair counts.
  void merge(int32_t a, int32_t b, int32_t m, int32_t step) {
    uint64_t key = pair_key(a, b);
    touched.clear();
    std::vector<int32_t> users = std::move(where[key]);
    where.erase(key);
    for (int32_t wi : users) {
      if (seen[wi] == step) continue;
      seen[wi] = step;
      auto& w = words[wi];
      const int64_t c = freq[wi];
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        if (w[i] != a || w[i + 1] != b) continue;
        if (i > 0) change(w[i - 1], w[i], -c, wi), change(w[i - 1], m, c, wi);
        if (i + 2 < w.size()) change(w[i + 1], w[i + 2], -c, wi), change(m, w[i + 2], c, wi);
        change(a, b, -c, wi);
        w[i] = m;
        w.erase(w.begin() + i + 1);
      }
    }
    for (const auto& [k, unused] : touched)
      if (k != key && pair_count[k] > 0)
        heap.push({pair_count[k], int32_t(k >> 32), int32_t(uint32_t(k))});
  }
};

Json tokenizer_json(const std::vector<std::string>& tokens, int32_t n_special, const Json& merges,
                    const std::vector<detail::Regex>& splits) {
  Json vocab = Json::object();
  for (int32_t i = 0; i < int32_t(tokens.size()); ++i) vocab[tokens[i]] = i;
  Json added = Json::array();
  for (int32_t i = 0; i < n_special; ++i)
    added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                     {"special", true}});
  Json pre = Json::array();
  for (const auto& r : splits)
    pre.push_back({{"type", "Split"}, {"pattern", {{"Regex", r.pattern()}}},
                   {"behavior", "Isolated"}, {"invert", false}});
  pre.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                 {"use_regex", false}});
  Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", true},
                     {"trim_offsets", false}, {"use_regex", true}};
  return Json{{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr},
              {"added_tokens", added}, {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", pre}}},
              {"post_processor", byte_level}, {"decoder", byte_level},
              {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                         {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                         {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
                         {"merges", merges}}}};
}

}  // namespace

Json BpeTrainer::finish() {
  const auto& o = impl_->opt;
  const int32_t n_special = int32_t(o.special_tokens.size());
  std::vector<std::string> tokens(o.special_tokens);
  for (int b = 0; b < 256; ++b) tokens.push_back(detail::byte_level_map().byte_to_utf8[b]);
  std::unordered_map<std::string, int32_t> token_ids;
  for (int32_t i = 0; i < int32_t(tokens.size()); ++i) token_ids.emplace(tokens[i], i);

  MergeState state(impl_->counts, n_special);
  Json merges = Json::array();
  while (int(tokens.size()) < o.vocab_size) {
    HeapEntry best = state.pop_best();
    if (best.count == 0 || best.count < o.min_frequency) break;
    // Two different pairs may spell the same token: it keeps its first id.
    std::string merged = tokens[best.a] + tokens[best.b];
    auto [it, added] = token_ids.emplace(merged, int32_t(tokens.size()));
    if (added) tokens.push_back(merged);
    merges.push_back(Json::array({tokens[best.a], tokens[best.b]}));
    state.merge(best.a, best.b, it->second, int32_t(merges.size()));
  }
  return tokenizer_json(tokens, n_special, merges, impl_->splits);
}

Json BpeTrainer::tokenizer_config() const {
  const auto& s = impl_->opt.special_tokens;
  Json c = {{"tokenizer_class", "LlamaTokenizerFast"}, {"add_bos_token", !s.empty()},
            {"add_eos_token", false}, {"clean_up_tokenization_spaces", false},
            {"model_max_length", 16384}};
  if (s.size() > 0) c["bos_token"] = s[0];
  if (s.size() > 1) c["eos_token"] = s[1];
  if (s.size() > 2) c["pad_token"] = s[2];
  bool deepseek_chat = false;
  for (const auto& t : s) deepseek_chat |= t == "<｜User｜>";
  if (deepseek_chat && s.size() > 1)  // the DeepSeek format without tool calls (docs/tokenizer.md)
    c["chat_template"] =
        "{{bos_token}}{%- for message in messages %}{%- if message['role'] == 'system' %}"
        "{{message['content']}}{%- endif %}{%- endfor %}{%- for message in messages %}"
        "{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}"
        "{%- elif message['role'] == 'assistant' %}{{'<｜Assistant｜>' + message['content'] + "
        "'" + s[1] + "'}}{%- endif %}{%- endfor %}"
        "{% if add_generation_prompt %}{{'<｜Assistant｜>'}}{% endif %}";
  return c;
}

int train_bpe_tokenizer(const std::string& corpus_path, const std::string& out_dir,
                        const BpeTrainerOptions& options) {
  BpeTrainer trainer(options);
  std::string corpus = read_file(corpus_path);
  bool jsonl = corpus_path.size() > 6 && corpus_path.ends_with(".jsonl");
  size_t begin = 0, line_no = 0, text_bytes = 0;
  while (begin < corpus.size()) {
    size_t end = corpus.find('\n', begin);
    if (end == std::string::npos) end = corpus.size();
    std::string_view line(corpus.data() + begin, end - begin);
    ++line_no;
    if (!jsonl) {
      text_bytes += line.size();
      trainer.add_text(std::string(line) + "\n");
    } else if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      Json j = try_parse_json(line).value_or(Json());
      if (!j.is_object())
        fail("[bpe_trainer] ", corpus_path, ":", line_no, ": not a JSON object");
      std::string text;
      bool has_string = false;
      if (j.contains("text") && j["text"].is_string()) {
        text = j["text"].get<std::string>();
        has_string = true;
      } else {  // e.g. {"prompt": .., "answer": ..}: every string field
        for (const auto& [k, v] : j.items()) {
          if (!v.is_string()) continue;
          text += v.get<std::string>() + "\n";
          has_string = true;
        }
      }
      if (!has_string) {
        fail("[bpe_trainer] ", corpus_path, ":", line_no,
             ": no text (a \"text\" string field, or any string field)");
      }
      text_bytes += text.size();
      trainer.add_text(text);
    }
    begin = end + 1;
  }
  if (text_bytes == 0) fail("[bpe_trainer] ", corpus_path, ": the corpus holds no text; nothing written");
  Json tok = trainer.finish();
  std::filesystem::create_directories(out_dir);
  write_file_atomic(out_dir + "/tokenizer.json", tok.dump(1));
  write_file_atomic(out_dir + "/tokenizer_config.json", trainer.tokenizer_config().dump(2));
  return int(tok["model"]["merges"].size());
}

}  // namespace aha::tokenizer
