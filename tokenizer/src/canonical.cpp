// Engram's canonical token ids: the normaliser chain of the demo's CompressedTokenizer on ICU.
#include "aha/tokenizer/canonical.h"

#include <unordered_map>

#include "aha/core/error.h"

#ifdef AHA_HAVE_ICU
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#endif

namespace aha::tokenizer {

namespace {

#ifndef AHA_HAVE_ICU
bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}
#endif

// Runs of [ \t\r\n] become one space (the demo's regex replace).
std::u32string collapse(const std::u32string& cps) {
  std::u32string out;
  for (char32_t c : cps) {
    const bool ws = c == U' ' || c == U'\t' || c == U'\r' || c == U'\n';
    if (ws && !out.empty() && out.back() == U' ') continue;
    out.push_back(ws ? U' ' : c);
  }
  return out;
}

}  // namespace

std::string engram_normalize(std::string_view text) {
  std::u32string cps;
#ifdef AHA_HAVE_ICU
  UErrorCode err = U_ZERO_ERROR;
  icu::UnicodeString s =
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), int32_t(text.size())));
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(err);
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(err);
  AHA_CHECK(U_SUCCESS(err), "ICU normalizer instances");
  s = nfd->normalize(nfkc->normalize(s, err), err);
  AHA_CHECK(U_SUCCESS(err), "ICU normalize");
  icu::UnicodeString kept;
  for (int32_t i = 0; i < s.length();) {
    const UChar32 c = s.char32At(i);
    if ((U_GET_GC_MASK(c) & U_GC_M_MASK) == 0) kept.append(c);
    i += U16_LENGTH(c);
  }
  // Lowercased one code point at a time, as HF's Lowercase normaliser (no final-sigma context).
  for (int32_t i = 0; i < kept.length();) {
    const UChar32 c = kept.char32At(i);
    icu::UnicodeString one(c);
    one.toLower(icu::Locale::getRoot());
    for (int32_t k = 0; k < one.length();) {
      const UChar32 l = one.char32At(k);
      cps.push_back(static_cast<char32_t>(l));
      k += U16_LENGTH(l);
    }
    i += U16_LENGTH(c);
  }
#else
  if (!is_ascii(text))
    fail("[engram] normalising non-ASCII token text needs ICU (build without ICU)");
  for (unsigned char c : text) cps.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
#endif
  std::u32string collapsed = collapse(cps);
  if (collapsed != U" ") {  // a lone space survives the strip (the demo's sentinel)
#ifdef AHA_HAVE_ICU
    auto white = [](char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0; };
#else
    auto white = [](char32_t c) { return c == U' ' || (c >= 9 && c <= 13); };
#endif
    size_t b = 0, e = collapsed.size();
    while (b < e && white(collapsed[b])) ++b;
    while (e > b && white(collapsed[e - 1])) --e;
    collapsed = collapsed.substr(b, e - b);
  }
  std::string out;
  for (char32_t c : collapsed) {  // UTF-8
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::vector<int32_t> engram_canonical_ids(const Tokenizer& tok, int n_ids) {
  AHA_CHECK(n_ids >= tok.vocab_size(), "n_ids ", n_ids, " < vocabulary ", tok.vocab_size());
  std::unordered_map<std::string, int32_t> key_to_id;
  std::vector<int32_t> ids(n_ids);
  int32_t next = 0;
  for (int32_t t = 0; t < n_ids; ++t) {
    std::string key;
    if (t >= tok.vocab_size()) {
      key = "\x01unused" + std::to_string(t);  // no text: a canonical id of its own
    } else {
      const int32_t one[] = {t};
      const std::string text = tok.decode_utf8(one, false);
      if (text.find("\xEF\xBF\xBD") != std::string::npos) {  // U+FFFD: not a whole character
        key = tok.id_to_token(t);
      } else {
        key = engram_normalize(text);
        if (key.empty()) key = text;
      }
    }
    auto [it, inserted] = key_to_id.emplace(key, next);
    if (inserted) ++next;
    ids[t] = it->second;
  }
  return ids;
}

}  // namespace aha::tokenizer
