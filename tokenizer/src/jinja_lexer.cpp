// Jinja lexer: splits a template into text and tag tokens, applying whitespace control the way
// jinja2's lexer does ({%- -%}, {%+ +%}, trim_blocks, lstrip_blocks, the dropped final newline).
#include <cctype>
#include <cstring>

#include "jinja_internal.h"

namespace aha::tokenizer::jinja {
namespace {

using TK = Token::Kind;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.rstrip() for ASCII whitespace.
void rstrip_all(std::string& s) {
  while (!s.empty() && is_space(s.back())) s.pop_back();
}

class Lexer {
 public:
  Lexer(std::string source, const Options& options) : src_(std::move(source)), opt_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t open = find_open(pos_);
      std::string text = src_.substr(pos_, open - pos_);
      bool line_start = pos_ == 0 || src_[pos_ - 1] == '\n';
      int text_line = line_;
      count_lines(pos_, open);
      pos_ = open;
      if (open == src_.size()) {
        push_text(std::move(text), text_line);
        break;
      }
      char type = src_[open + 1];
      char sign = open + 2 < src_.size() ? src_[open + 2] : 0;
      if (sign == '-') {
        rstrip_all(text);
      } else if (sign != '+' && opt_.lstrip_blocks && type != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_start) &&
            text.find_first_not_of(" \t\f\v", l_pos) == std::string::npos)
          text.resize(l_pos);
      }
      push_text(std::move(text), text_line);
      pos_ = open + 2 + (sign == '-' || sign == '+');
      if (type == '#') comment(open);
      else tag(type == '{');
    }
    tokens_.push_back(Token{TK::kEnd, "", 0, 0, line_});
    return std::move(tokens_);
  }

 private:
  size_t find_open(size_t from) const {
    for (size_t k = from; k + 1 < src_.size(); ++k)
      if (src_[k] == '{' && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#'))
        return k;
    return src_.size();
  }
  void count_lines(size_t from, size_t to) {
    for (size_t k = from; k < to && k < src_.size(); ++k) line_ += src_[k] == '\n';
  }
  void push_text(std::string text, int line) {
    if (!text.empty()) tokens_.push_back(Token{TK::kText, std::move(text), 0, 0, line});
  }
  // After a closing delimiter: `-` eats all following whitespace, trim_blocks one newline.
  void after_close(char sign, bool block) {
    size_t start = pos_;
    if (sign == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (sign != '+' && block && opt_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    count_lines(start, pos_);
  }

  void comment(size_t open) {
    int line = line_;
    size_t close = src_.find("#}", pos_);
    if (close == std::string::npos) error_at(line, "unclosed comment '{#'");
    char sign = close > open + 2 && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
    count_lines(pos_, close + 2);
    pos_ = close + 2;
    after_close(sign, true);
  }

  void tag(bool expr) {
    int line = line_;
    tokens_.push_back(Token{expr ? TK::kExprBegin : TK::kStmtBegin, "", 0, 0, line});
    int depth = 0;
    for (;;) {
      while (pos_ < src_.size() && is_space(src_[pos_])) line_ += src_[pos_++] == '\n';
      if (pos_ >= src_.size()) error_at(line, "unclosed '", expr ? "{{" : "{%", "'");
      const char* close = expr ? "}}" : "%}";
      char c = src_[pos_];
      char sign = (c == '-' || c == '+') ? c : 0;
      if (depth == 0 && src_.compare(pos_ + (sign ? 1 : 0), 2, close) == 0 &&
          (sign != '+' || !expr)) {
        pos_ += 2 + (sign ? 1 : 0);
        tokens_.push_back(Token{expr ? TK::kExprEnd : TK::kStmtEnd, "", 0, 0, line_});
        after_close(sign, !expr);
        return;
      }
      lex_token(depth);
    }
  }

  void lex_token(int& depth) {
    char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos_;
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      tokens_.push_back(Token{TK::kName, src_.substr(start, pos_ - start), 0, 0, line_});
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      number();
    } else if (c == '\'' || c == '"') {
      string_literal(c);
    } else {
      static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%",
                                   "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".",
                                   ":", "|"};
      for (const char* op : kOps) {
        if (src_.compare(pos_, std::strlen(op), op) == 0) {
          if (std::strchr("([{", op[0]) && op[1] == 0) ++depth;
          if (std::strchr(")]}", op[0]) && op[1] == 0) --depth;
          tokens_.push_back(Token{TK::kOp, op, 0, 0, line_});
          pos_ += std::strlen(op);
          return;
        }
      }
      error_at(line_, "unexpected character '", std::string(1, c), "'");
    }
  }

  void number() {
    size_t start = pos_;
    while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
    bool is_float = pos_ + 1 < src_.size() && src_[pos_] == '.' &&
                    std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]));
    if (is_float) {
      ++pos_;
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    }
    // An exponent (1e3, 2.5e-3) makes a float, as in jinja2.
    size_t e = pos_ + 1 + (pos_ + 1 < src_.size() && (src_[pos_ + 1] == '+' || src_[pos_ + 1] == '-'));
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E') && e < src_.size() &&
        std::isdigit(static_cast<unsigned char>(src_[e]))) {
      is_float = true;
      pos_ = e;
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    }
    std::string digits;
    for (size_t k = start; k < pos_; ++k)
      if (src_[k] != '_') digits += src_[k];
    Token t{is_float ? TK::kFloat : TK::kInt, digits, 0, 0, line_};
    try {
      if (is_float) t.f = std::stod(digits);
      else t.i = std::stoll(digits);
    } catch (const std::exception&) {
      error_at(line_, "number out of range: ", digits.substr(0, 40));
    }
    tokens_.push_back(std::move(t));
  }

  static void append_utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    }
  }

  // Python string escapes; an unknown escape keeps its backslash, as Python does.
  void escape(std::string& out) {
    char e = pos_ < src_.size() ? src_[pos_++] : '\\';
    const char* simple = std::strchr("nrtbfv0\\'\"", e);
    if (simple != nullptr && e != 0) {
      static const char kMap[] = {'\n', '\r', '\t', '\b', '\f', '\v', '\0', '\\', '\'', '"'};
      out += kMap[simple - "nrtbfv0\\'\""];
      return;
    }
    int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (digits > 0 && pos_ + digits <= src_.size()) {
      uint32_t cp = 0;
      for (int k = 0; k < digits; ++k) {
        char h = src_[pos_ + k];
        if (!std::isxdigit(static_cast<unsigned char>(h))) error_at(line_, "bad \\", std::string(1, e), " escape");
        cp = cp * 16 + uint32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      if (cp > 0x10FFFF) error_at(line_, "bad \\U escape");
      pos_ += size_t(digits);
      append_utf8(cp, out);
      return;
    }
    if (e == '\n') {  // a backslash-newline continues the literal
      ++line_;
      return;
    }
    out += '\\', out += e;
  }

  void string_literal(char quote) {
    int line = line_;
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= src_.size()) error_at(line, "unterminated string literal");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c == '\\') {
        escape(out);
        continue;
      }
      line_ += c == '\n';
      out += c;
    }
    tokens_.push_back(Token{TK::kString, std::move(out), 0, 0, line});
  }

  std::string src_;
  Options opt_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

// jinja2 reads every \r\n and \r as \n, and drops one newline at the very end.
std::string normalize_newlines(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      out += '\n';
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      out += source[k];
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> lex(std::string_view source, const Options& options) {
  return Lexer(normalize_newlines(source, options.keep_trailing_newline), options).run();
}

}  // namespace aha::tokenizer::jinja
