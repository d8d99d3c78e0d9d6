// Text-only rewards: R1-Zero format, tag counts, script share, length shaping, repetition.
#include "aha/rewards/text_rewards.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "aha/core/error.h"

namespace aha::rewards {
namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

size_t count(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// Decodes one UTF-8 code point at s[i]; returns its length (1 for an invalid byte, cp = -1).
size_t decode_utf8(std::string_view s, size_t i, int32_t& cp) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    cp = -1;
    return 1;
  }
  cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d >> 6) != 2) {
      cp = -1;
      return 1;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  return len;
}

// The script of a letter code point; -1 when it is not a letter we classify.
int script_of(int32_t cp) {
  if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= 0xC0 && cp <= 0x24F)) {
    return static_cast<int>(Script::kLatin);
  }
  if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
      (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0xF900 && cp <= 0xFAFF)) {
    return static_cast<int>(Script::kHan);
  }
  if (cp >= 0x0400 && cp <= 0x052F) return static_cast<int>(Script::kCyrillic);
  if (cp >= 0x0600 && cp <= 0x06FF) return static_cast<int>(Script::kArabic);
  if ((cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x1100 && cp <= 0x11FF)) {
    return static_cast<int>(Script::kHangul);
  }
  if (cp >= 0x3040 && cp <= 0x30FF) return static_cast<int>(Script::kKana);
  if (cp >= 0x0370 && cp <= 0x03FF) return static_cast<int>(Script::kGreek);
  if (cp >= 0x0900 && cp <= 0x097F) return static_cast<int>(Script::kDevanagari);
  return -1;
}

}  // namespace

bool r1_format_ok(std::string_view completion, bool think_in_prompt) {
  std::string_view s = trim(completion);
  if (!think_in_prompt) {
    if (s.substr(0, 7) != "<think>") return false;
    s.remove_prefix(7);
  }
  if (count(s, "<think>") != 0 || count(s, "</think>") != 1 || count(s, "<answer>") != 1 ||
      count(s, "</answer>") != 1) {
    return false;
  }
  size_t think_end = s.find("</think>");
  std::string_view rest = trim(s.substr(think_end + 8));
  if (rest.substr(0, 8) != "<answer>") return false;
  if (rest.size() < 17 || rest.substr(rest.size() - 9) != "</answer>") return false;
  return !trim(rest.substr(8, rest.size() - 17)).empty();
}

double tag_count_score(std::string_view c) {
  double score = 0;
  for (const char* tag : {"<think>", "</think>", "<answer>", "</answer>"}) {
    if (count(c, tag) == 1) score += 0.25;
  }
  return score;
}

std::string_view chain_of_thought(std::string_view c) {
  size_t open = c.find("<think>");
  size_t close = c.find("</think>");
  if (close != std::string_view::npos) {
    size_t begin = open != std::string_view::npos && open < close ? open + 7 : 0;
    return c.substr(begin, close - begin);
  }
  size_t answer = c.find("<answer>");
  size_t begin = open != std::string_view::npos ? open + 7 : 0;
  if (answer != std::string_view::npos && answer >= begin) return c.substr(begin, answer - begin);
  return c.substr(begin);
}

Script parse_script(const std::string& name) {
  if (name == "en" || name == "latin" || name == "fr" || name == "de" || name == "es") {
    return Script::kLatin;
  }
  if (name == "zh" || name == "han") return Script::kHan;
  if (name == "ru" || name == "cyrillic") return Script::kCyrillic;
  if (name == "ar" || name == "arabic") return Script::kArabic;
  if (name == "ko" || name == "hangul") return Script::kHangul;
  if (name == "ja" || name == "kana") return Script::kKana;
  if (name == "el" || name == "greek") return Script::kGreek;
  if (name == "hi" || name == "devanagari") return Script::kDevanagari;
  fail("[language] unknown language '", name,
       "' (en, zh, ru, ar, ko, ja, el, hi or a script name)");
}

double script_share(std::string_view text, Script target) {
  int64_t letters = 0, in_target = 0;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '\\') {  // LaTeX commands (\frac, \boxed) are not words of any language
      ++i;
      while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
      continue;
    }
    int32_t cp;
    i += decode_utf8(text, i, cp);
    if (cp < 0) {
      ++letters;
      continue;
    }
    int s = script_of(cp);
    if (s < 0) continue;
    ++letters;
    // Japanese mixes kana and kanji: both count for "ja"
    if (s == static_cast<int>(target) ||
        (target == Script::kKana && s == static_cast<int>(Script::kHan))) {
      ++in_target;
    }
  }
  return letters == 0 ? 0.0 : static_cast<double>(in_target) / static_cast<double>(letters);
}

double overlong_penalty(int64_t length, int64_t max_len, int64_t cache_len) {
  AHA_CHECK(max_len > 0 && cache_len >= 0 && cache_len <= max_len, "max_len=", max_len,
            " cache_len=", cache_len);
  if (length <= max_len - cache_len) return 0.0;
  if (length > max_len) return -1.0;
  return static_cast<double>(max_len - cache_len - length) / static_cast<double>(cache_len);
}

double cosine_scaled(bool correct, int64_t length, const CosineParams& p) {
  double lo = correct ? p.min_value_correct : p.max_value_wrong;
  double hi = correct ? p.max_value_correct : p.min_value_wrong;
  double t = std::min<double>(static_cast<double>(length), static_cast<double>(p.max_len));
  double cosine = std::cos(t * 3.14159265358979323846 / static_cast<double>(p.max_len));
  return lo + 0.5 * (hi - lo) * (1.0 + cosine);
}

double repetition_penalty(std::string_view text, int ngram_size, double max_penalty) {
  AHA_CHECK(ngram_size > 0 && max_penalty <= 0, "ngram_size=", ngram_size,
            " max_penalty=", max_penalty);
  std::vector<std::string_view> words;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t j = i;
    while (j < text.size() && !is_space(text[j])) ++j;
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j;
  }
  if (words.size() < static_cast<size_t>(ngram_size)) return 0.0;
  std::unordered_set<std::string> seen;
  size_t total = words.size() - ngram_size + 1;
  for (size_t i = 0; i < total; ++i) {
    std::string key;
    for (int k = 0; k < ngram_size; ++k) {
      key.append(words[i + k]);
      key += '\x1f';
    }
    seen.insert(std::move(key));
  }
  return (1.0 - static_cast<double>(seen.size()) / static_cast<double>(total)) * max_penalty;
}

}  // namespace aha::rewards
