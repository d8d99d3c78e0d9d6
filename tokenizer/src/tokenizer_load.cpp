// Tokenizer::load / from_json: turns tokenizer.json + tokenizer_config.json into Tokenizer::Impl,
// rejecting what aha cannot reproduce exactly with one clear error.
#include <filesystem>

#include "aha/core/fileio.h"
#include "tokenizer_impl.h"

namespace aha::tokenizer {

namespace {

using detail::PreTokStep;

// GPT-2's regex, used by ByteLevel pre-tokenizers with use_regex: true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string type_of(const Json& j, const char* where) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail("[tokenizer] ", where, ": expected an object with a string \"type\"");
  return j["type"].get<std::string>();
}

// Escapes a literal for PCRE2 (Split with {"String": ...}).
std::string quote_regex(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

void add_pre_tokenizer(Tokenizer::Impl& t, const Json& j, bool& byte_level) {
  if (j.is_null()) return;
  std::string type = type_of(j, "pre_tokenizer");
  if (type == "Sequence") {
    for (const Json& s : j.at("pretokenizers")) add_pre_tokenizer(t, s, byte_level);
    return;
  }
  PreTokStep step;
  if (type == "ByteLevel") {
    byte_level = true;
    step.kind = PreTokStep::Kind::kByteLevel;
    step.add_prefix_space = j.value("add_prefix_space", false);
    if (j.value("use_regex", true)) step.regex = std::make_unique<detail::Regex>(kGpt2Pattern);
  } else if (type == "Split") {
    const Json& p = j.at("pattern");
    std::string pattern = p.contains("Regex") ? p["Regex"].get<std::string>()
                                              : quote_regex(p.at("String").get<std::string>());
    std::string behavior = j.value("behavior", "Isolated");
    step.invert = j.value("invert", false);
    if (behavior == "Isolated") {
      step.kind = PreTokStep::Kind::kSplitIsolated;
    } else if (behavior == "Removed") {
      step.kind = PreTokStep::Kind::kSplitRemoved;
    } else {
      fail("[tokenizer] Split behavior '", behavior, "' is not supported (Isolated, Removed)");
    }
    step.regex = std::make_unique<detail::Regex>(pattern);
  } else {
    fail("[tokenizer] pre_tokenizer type '", type,
         "' is not supported (Sequence, Split, ByteLevel)");
  }
  t.steps.push_back(std::move(step));
}

void set_normalizer(Tokenizer::Impl& t, const Json& j) {
  if (j.is_null()) return;
  std::string type = type_of(j, "normalizer");
  if (type == "Sequence") {
    for (const Json& n : j.at("normalizers")) set_normalizer(t, n);
  } else if (type == "NFC") {
    t.normalizer = detail::Normalizer::kNfc;
  } else {
    fail("[tokenizer] normalizer type '", type, "' is not supported (Sequence, NFC)");
  }
}

void grow(Tokenizer::Impl& t, int32_t id) {
  if (id < 0) fail("[tokenizer] negative token id ", id);
  if (id >= (1 << 21)) fail("[tokenizer] token id ", id, " is implausibly large (>= 2^21)");
  if (size_t(id) >= t.tokens.size()) {
    t.tokens.resize(id + 1);
    t.bytes.resize(id + 1);
    t.special.resize(id + 1, 0);
    t.whole_ok.resize(id + 1, 0);
  }
}

void load_vocab(Tokenizer::Impl& t, const Json& model) {
  const Json& vocab = model.at("vocab");
  if (!vocab.is_object()) fail("[tokenizer] model.vocab must be an object {token: id}");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer())
      fail("[tokenizer] model.vocab[\"", it.key(), "\"] is not an integer id");
    int32_t id = it.value().get<int32_t>();
    grow(t, id);
    t.tokens[id] = it.key();
    if (!detail::token_to_bytes(it.key(), t.bytes[id])) t.bytes[id] = it.key();
    t.token_ids[it.key()] = id;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = t.token_ids.find(detail::byte_level_map().byte_to_utf8[b]);
    if (it == t.token_ids.end())
      fail("[tokenizer] the vocabulary lacks the byte-level token for byte ", b);
    t.byte_ids[b] = it->second;
  }
}

std::pair<std::string, std::string> merge_pair(const Json& m, size_t rank) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    size_t sp = s.find(' ');
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
      fail("[tokenizer] merge ", rank, " \"", s, "\" is not of the form \"a b\"");
    return {s.substr(0, sp), s.substr(sp + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  fail("[tokenizer] merge ", rank, " is neither \"a b\" nor [\"a\", \"b\"]");
}

void load_merges(Tokenizer::Impl& t, const Json& model) {
  const Json& merges = model.at("merges");
  if (!merges.is_array()) fail("[tokenizer] model.merges must be an array");
  t.merges.reserve(merges.size());
  auto id_of = [&](const std::string& tok, size_t rank) {
    auto it = t.token_ids.find(tok);
    if (it == t.token_ids.end())
      fail("[tokenizer] merge ", rank, " uses '", tok, "' which is not in the vocabulary");
    return it->second;
  };
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    auto [a, b] = merge_pair(merges[rank], rank);
    t.merges.insert(id_of(a, rank), id_of(b, rank), int32_t(rank), id_of(a + b, rank));
  }
}

void load_added_tokens(Tokenizer::Impl& t, const Json& j) {
  if (j.is_null()) return;
  for (const Json& a : j) {
    AddedToken tok;
    tok.id = a.at("id").get<int32_t>();
    tok.content = a.at("content").get<std::string>();
    tok.special = a.value("special", false);
    tok.lstrip = a.value("lstrip", false);
    tok.rstrip = a.value("rstrip", false);
    tok.normalized = a.value("normalized", !tok.special);
    tok.single_word = a.value("single_word", false);
    if (tok.content.empty()) fail("[tokenizer] added token ", tok.id, " has empty content");
    grow(t, tok.id);
    t.tokens[tok.id] = tok.content;
    t.bytes[tok.id] = tok.content;
    t.special[tok.id] = tok.special;
    t.token_ids[tok.content] = tok.id;
    t.added_matcher.add(tok.content, int32_t(t.added.size()));
    t.added.push_back(std::move(tok));
  }
}

// BOS/EOS from TemplateProcessing ("single": [{SpecialToken}, {Sequence: A}, ...]).
void load_template_processing(Tokenizer::Impl& t, const Json& j) {
  bool seen_a = false;
  for (const Json& item : j.at("single")) {
    if (item.contains("Sequence")) {
      seen_a = true;
      continue;
    }
    std::string name = item.at("SpecialToken").at("id").get<std::string>();
    auto it = t.token_ids.find(name);
    if (it == t.token_ids.end()) fail("[tokenizer] post_processor token '", name, "' unknown");
    (seen_a ? t.suffix_ids : t.prefix_ids).push_back(it->second);
  }
}

void load_post_processor(Tokenizer::Impl& t, const Json& j, const Json& config) {
  std::string type = j.is_null() ? "" : type_of(j, "post_processor");
  if (type == "TemplateProcessing") return load_template_processing(t, j);
  // Sequence (Llama-3.1): ByteLevel steps add nothing; a TemplateProcessing step adds BOS/EOS.
  if (type == "Sequence") {
    bool templated = false;
    for (const Json& p : j.at("processors")) {
      std::string step = type_of(p, "post_processor");
      if (step == "TemplateProcessing" && !templated) {
        load_template_processing(t, p);
        templated = true;
      } else if (step != "ByteLevel") {
        fail("[tokenizer] post_processor Sequence step '", step,
             "' is not supported (ByteLevel, one TemplateProcessing)");
      }
    }
    if (templated) return;
  } else if (!type.empty() && type != "ByteLevel") {
    fail("[tokenizer] post_processor type '", type,
         "' is not supported (ByteLevel, TemplateProcessing, Sequence of those)");
  }
  // A ByteLevel post-processor adds nothing; HF's Llama tokenizer class adds BOS/EOS from the
  // tokenizer_config flags.
  if (config.is_object()) {
    if (config.value("add_bos_token", false) && t.bos) t.prefix_ids.push_back(*t.bos);
    if (config.value("add_eos_token", false) && t.eos) t.suffix_ids.push_back(*t.eos);
  }
}

std::string config_token(const Json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return "";
  const Json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return "";
}

void load_config(Tokenizer::Impl& t, const Json& config) {
  if (!config.is_object()) return;
  auto id_of = [&](const std::string& tok) -> std::optional<int32_t> {
    if (tok.empty()) return std::nullopt;
    auto it = t.token_ids.find(tok);
    if (it == t.token_ids.end())
      fail("[tokenizer] tokenizer_config token '", tok, "' is not in the vocabulary");
    return it->second;
  };
  t.bos_token = config_token(config, "bos_token");
  t.eos_token = config_token(config, "eos_token");
  t.bos = id_of(t.bos_token);
  t.eos = id_of(t.eos_token);
  t.pad = id_of(config_token(config, "pad_token"));
  if (config.contains("chat_template") && config["chat_template"].is_string())
    t.chat_template = config["chat_template"].get<std::string>();
}

// Marks the model tokens that BPE of their own bytes reproduces: encode may then map a whole
// pre-tokenized piece found in the vocabulary straight to its id, exactly.
void index_pieces(Tokenizer::Impl& t, const std::vector<uint8_t>& is_added) {
  std::vector<int32_t> ids;
  for (size_t id = 0; id < t.tokens.size(); ++id) {
    if (is_added[id] || t.tokens[id].empty()) continue;
    const std::string& b = t.bytes[id];
    ids.clear();
    for (unsigned char c : b) ids.push_back(t.byte_ids[c]);
    if (!t.ignore_merges) detail::bpe_merge(t.merges, ids);
    t.whole_ok[id] = t.ignore_merges || (ids.size() == 1 && ids[0] == int32_t(id));
    if (t.whole_ok[id]) t.piece_ids.emplace(std::string_view(b), int32_t(id));
  }
}

}  // namespace

Tokenizer Tokenizer::from_json(const Json& j, const Json& config) {
  auto t = std::make_unique<Impl>();
  try {
    if (!j.is_object() || !j.contains("model")) fail("[tokenizer] no \"model\" object");
    const Json& model = j["model"];
    std::string type = model.value("type", "BPE");
    if (type != "BPE")
      fail("[tokenizer] model type '", type, "' is not supported (only byte-level BPE)");
    if (model.value("byte_fallback", false)) fail("[tokenizer] BPE byte_fallback not supported");
    t->ignore_merges = model.value("ignore_merges", false);
    load_vocab(*t, model);
    load_merges(*t, model);
    load_added_tokens(*t, j.value("added_tokens", Json()));
    set_normalizer(*t, j.value("normalizer", Json()));
    bool byte_level = false;
    add_pre_tokenizer(*t, j.value("pre_tokenizer", Json()), byte_level);
    if (!byte_level) fail("[tokenizer] no ByteLevel pre-tokenizer: only byte-level BPE is supported");
    const Json decoder = j.value("decoder", Json());
    if (!decoder.is_null() && type_of(decoder, "decoder") != "ByteLevel")
      fail("[tokenizer] decoder type '", decoder["type"].get<std::string>(),
           "' is not supported (ByteLevel)");
    load_config(*t, config);
    load_post_processor(*t, j.value("post_processor", Json()), config);
    std::vector<uint8_t> is_added(t->tokens.size(), 0);
    for (const auto& a : t->added) is_added[a.id] = 1;
    index_pieces(*t, is_added);
  } catch (const Json::exception& e) {
    fail("[tokenizer] malformed tokenizer.json: ", e.what());
  }
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path file = path, dir = path;
  if (fs::is_directory(file)) {
    file /= "tokenizer.json";
  } else {
    dir = file.parent_path();
  }
  if (!fs::exists(file)) fail("[tokenizer] no tokenizer.json at ", file.string());
  Json j = load_json_file(file.string());
  Json config;
  fs::path config_file = dir / "tokenizer_config.json";
  if (fs::exists(config_file)) config = load_json_file(config_file.string());
  try {
    return from_json(j, config);
  } catch (const Error& e) {
    fail(e.what(), " (", file.string(), ")");
  }
}

}  // namespace aha::tokenizer
