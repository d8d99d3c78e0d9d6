// Engram's token-id compression: the demo's normaliser chain (expected values from Python's
// unicodedata with the same steps) and canonical ids over a byte-level vocabulary.
#include "aha/tokenizer/canonical.h"

#include <gtest/gtest.h>

namespace aha::tokenizer {
namespace {

TEST(EngramCanonical, NormalisesLikeTheDemo) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  H\xC3\xA9llo\tWorld  ", "hello world"},
      {" ", " "},
      {"\n\n", " "},
      {"\xEF\xAC\x81ne", "fine"},  // the fi ligature (NFKC)
      {"\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3", "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83"},  // no final sigma
      {"\xC3\x85NGSTR\xC3\x96M", "angstrom"},
      {"\xCC\x81", ""},    // a lone combining accent
      {"\xC4\xB0", "i"},   // I with dot above
      {"x\xC2\xA0", "x"},  // NBSP becomes a space, stripped
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(engram_normalize(in), want) << in;
}

// Byte tokens 0..255 in GPT-2's byte-to-unicode form, plus the merge " w".
Json byte_vocab() {
  Json vocab = Json::object();
  int extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    const int cp = printable ? b : extra++;
    std::string s;
    if (cp < 0x80) {
      s += char(cp);
    } else {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    }
    vocab[s] = b;
  }
  vocab["\xC4\xA0w"] = 256;  // "Ġw"
  return Json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\xC4\xA0 w"}}}},
              {"added_tokens", Json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"use_regex", false}}},
              {"decoder", {{"type", "ByteLevel"}}}};
}

TEST(EngramCanonical, IdsShareTheirNormalisedText) {
  const Tokenizer tok = Tokenizer::from_json(byte_vocab());
  const auto ids = engram_canonical_ids(tok, tok.vocab_size() + 2);
  EXPECT_EQ(ids[0], 0);  // numbered in order of first appearance
  EXPECT_EQ(ids['A'], ids['a']);
  EXPECT_EQ(ids[' '], ids['\n']);
  EXPECT_EQ(ids[' '], ids['\t']);
  EXPECT_EQ(ids[256], ids['w']);  // " w" normalises to "w"
  EXPECT_EQ(ids['W'], ids['w']);
  EXPECT_NE(ids['a'], ids['b']);
  EXPECT_NE(ids[0xC3], ids[0xC4]);  // half characters key on their token strings
  EXPECT_NE(ids[tok.vocab_size()], ids[tok.vocab_size() + 1]);  // ids past the vocabulary
  int32_t max = 0;
  for (int32_t v : ids) max = std::max(max, v);
  EXPECT_LT(max, tok.vocab_size() + 2 - 26 - 3);  // letters and white space merged
}

}  // namespace
}  // namespace aha::tokenizer
