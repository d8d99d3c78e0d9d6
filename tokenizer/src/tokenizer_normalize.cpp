// NFC normalization for tokenizers whose normalizer is NFC (Qwen2/3): ICU when the build has it;
// without ICU only text that is trivially NFC (no code point >= U+0300) is accepted.
#include <string>
#include <string_view>

#include "aha/core/error.h"

#ifdef AHA_HAVE_ICU
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#endif

namespace aha::tokenizer::detail {

bool nfc_normalize(std::string_view text, std::string& out) {
  // Every code point below U+0300 is NFC_Quick_Check=Yes: its UTF-8 lead byte is < 0xCC.
  bool trivial = true;
  for (unsigned char c : text)
    if (c >= 0xCC) {
      trivial = false;
      break;
    }
  if (trivial) return false;
#ifdef AHA_HAVE_ICU
  UErrorCode err = U_ZERO_ERROR;
  int32_t n16 = 0;
  u_strFromUTF8(nullptr, 0, &n16, text.data(), int32_t(text.size()), &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return false;  // invalid UTF-8: as is
  std::u16string u16(n16, u'\0');
  err = U_ZERO_ERROR;
  u_strFromUTF8(reinterpret_cast<UChar*>(u16.data()), n16, nullptr, text.data(),
                int32_t(text.size()), &err);
  if (U_FAILURE(err)) return false;
  const UNormalizer2* nfc = unorm2_getNFCInstance(&err);
  AHA_CHECK(U_SUCCESS(err), "ICU NFC instance");
  const UChar* src = reinterpret_cast<const UChar*>(u16.data());
  if (unorm2_isNormalized(nfc, src, n16, &err) && U_SUCCESS(err)) return false;
  err = U_ZERO_ERROR;
  std::u16string norm(size_t(n16) * 3 + 8, u'\0');
  int32_t n_norm = unorm2_normalize(nfc, src, n16, reinterpret_cast<UChar*>(norm.data()),
                                    int32_t(norm.size()), &err);
  AHA_CHECK(U_SUCCESS(err), "ICU NFC normalize");
  int32_t n8 = 0;
  err = U_ZERO_ERROR;
  u_strToUTF8(nullptr, 0, &n8, reinterpret_cast<const UChar*>(norm.data()), n_norm, &err);
  out.assign(size_t(n8), '\0');
  err = U_ZERO_ERROR;
  u_strToUTF8(out.data(), n8, nullptr, reinterpret_cast<const UChar*>(norm.data()), n_norm, &err);
  AHA_CHECK(U_SUCCESS(err), "ICU UTF-8 conversion");
  return true;
#else
  fail("[tokenizer] NFC normalization of non-Latin text needs ICU (build without ICU)");
#endif
}

}  // namespace aha::tokenizer::detail
