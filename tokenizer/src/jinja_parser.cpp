// Jinja parser: tokens -> statement tree, with jinja2's operator precedence (or < and < not <
// comparisons < + - < ~ < * / // % < ** < unary < postfix, filters and tests).
#include <algorithm>
#include <initializer_list>

#include "jinja_internal.h"

namespace aha::tokenizer::jinja {
namespace {

using TK = Token::Kind;
using EK = Expr::Kind;
using SK = Stmt::Kind;

constexpr int kMaxNesting = 200;

ExprPtr make_expr(EK kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  std::unique_ptr<Program> run() {
    auto program = std::make_unique<Program>();
    std::string end;
    program->body = body({}, end, 0);
    return program;
  }

 private:
  const Token& peek(size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[p_];
    if (p_ + 1 < t_.size()) ++p_;
    return t;
  }
  bool at_op(const char* op) const { return peek().kind == TK::kOp && peek().text == op; }
  bool at_name(const char* name) const { return peek().kind == TK::kName && peek().text == name; }
  bool accept_op(const char* op) { return at_op(op) ? (next(), true) : false; }
  bool accept_name(const char* name) { return at_name(name) ? (next(), true) : false; }
  [[noreturn]] void unexpected(const char* wanted) const {
    const Token& t = peek();
    if (t.kind == TK::kEnd || t.kind == TK::kStmtEnd || t.kind == TK::kExprEnd)
      error_at(t.line, "expected ", wanted, ", got ",
               t.kind == TK::kEnd ? "end of template" : t.kind == TK::kStmtEnd ? "'%}'" : "'}}'");
    error_at(t.line, "expected ", wanted, ", got '", t.text.substr(0, 40), "'");
  }
  void expect_op(const char* op) {
    if (accept_op(op)) return;
    std::string quoted = "'";
    quoted += op;
    quoted += '\'';
    unexpected(quoted.c_str());
  }
  std::string expect_name() {
    if (peek().kind != TK::kName) unexpected("a name");
    return next().text;
  }
  void expect_kind(TK kind, const char* what) {
    if (peek().kind != kind) unexpected(what);
    next();
  }

  // Statements up to one of `ends` (whose name is stored in `end`, its tag left open).
  Body body(std::initializer_list<const char*> ends, std::string& end, int depth) {
    if (depth > kMaxNesting) error_at(peek().line, "blocks nested too deeply");
    Body out;
    for (;;) {
      const Token& t = peek();
      if (t.kind == TK::kEnd) {
        if (ends.size() != 0)
          error_at(t.line, "unexpected end of template: a block is not closed with '{% ",
                   *(ends.end() - 1), " %}'");
        return out;
      }
      if (t.kind == TK::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = SK::kText;
        s->line = t.line;
        s->text = next().text;
        out.push_back(std::move(s));
      } else if (t.kind == TK::kExprBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = SK::kOutput;
        s->line = t.line;
        s->expr = expression(0);
        expect_kind(TK::kExprEnd, "'}}'");
        out.push_back(std::move(s));
      } else if (t.kind == TK::kStmtBegin) {
        next();
        const Token& name = peek();
        if (name.kind != TK::kName) unexpected("a statement name");
        if (std::find_if(ends.begin(), ends.end(), [&](const char* e) { return name.text == e; }) != ends.end()) {
          end = next().text;
          return out;
        }
        out.push_back(statement(depth));
      } else {
        unexpected("text or a tag");
      }
    }
  }

  std::unique_ptr<Stmt> statement(int depth) {
    const Token& name = next();
    auto s = std::make_unique<Stmt>();
    s->line = name.line;
    const std::string& kw = name.text;
    std::string end;
    if (kw == "if") {
      s->kind = SK::kIf;
      ExprPtr cond = expression(0);
      for (;;) {
        expect_kind(TK::kStmtEnd, "'%}'");
        Body b = body({"elif", "else", "endif"}, end, depth + 1);
        s->branches.emplace_back(std::move(cond), std::move(b));
        if (end == "endif") break;
        if (end == "else") {
          expect_kind(TK::kStmtEnd, "'%}'");
          s->else_body = body({"endif"}, end, depth + 1);
          break;
        }
        cond = expression(0);
      }
    } else if (kw == "for") {
      s->kind = SK::kFor;
      do s->targets.push_back(expect_name());
      while (accept_op(","));
      if (!accept_name("in")) unexpected("'in'");
      s->expr = or_expr(0);
      if (accept_name("if")) s->filter = or_expr(0);
      if (at_name("recursive")) error_at(s->line, "recursive loops are not supported");
      expect_kind(TK::kStmtEnd, "'%}'");
      s->body = body({"else", "endfor"}, end, depth + 1);
      if (end == "else") {
        expect_kind(TK::kStmtEnd, "'%}'");
        s->else_body = body({"endfor"}, end, depth + 1);
      }
    } else if (kw == "set") {
      s->targets.push_back(expect_name());
      if (accept_op(".")) s->attr = expect_name();
      if (accept_op("=")) {
        s->kind = SK::kSet;
        s->expr = expression(0);
      } else {
        if (!s->attr.empty()) unexpected("'='");
        s->kind = SK::kSetBlock;
        expect_kind(TK::kStmtEnd, "'%}'");
        s->body = body({"endset"}, end, depth + 1);
      }
    } else if (kw == "macro") {
      s->kind = SK::kMacro;
      s->targets.push_back(expect_name());
      expect_op("(");
      while (!accept_op(")")) {
        std::string param = expect_name();
        ExprPtr def = accept_op("=") ? expression(0) : nullptr;
        s->params.emplace_back(std::move(param), std::move(def));
        if (!at_op(")")) expect_op(",");
      }
      expect_kind(TK::kStmtEnd, "'%}'");
      s->body = body({"endmacro"}, end, depth + 1);
    } else if (kw == "generation") {
      // HF's {% generation %} marks assistant text for masks; it renders its body as is.
      s->kind = SK::kIf;
      expect_kind(TK::kStmtEnd, "'%}'");
      Body b = body({"endgeneration"}, end, depth + 1);
      auto yes = make_expr(EK::kLiteral, s->line);
      yes->literal = Value::boolean(true);
      s->branches.emplace_back(std::move(yes), std::move(b));
    } else if (kw == "break" || kw == "continue") {
      s->kind = kw == "break" ? SK::kBreak : SK::kContinue;
    } else if (kw.starts_with("end") || kw == "elif" || kw == "else") {
      error_at(name.line, "unexpected '{% ", kw.substr(0, 40), " %}': no open block it belongs to");
    } else {
      error_at(name.line, "unknown or unsupported tag '", kw.substr(0, 40), "'");
    }
    expect_kind(TK::kStmtEnd, "'%}'");
    return s;
  }

  // ---- expressions ----
  void guard(int depth) const {
    if (depth > kMaxNesting) error_at(peek().line, "expression nested too deeply");
  }

  ExprPtr expression(int depth) {
    guard(depth);
    ExprPtr e = or_expr(depth + 1);
    if (at_name("if")) {
      int line = next().line;
      auto c = make_expr(EK::kCond, line);
      ExprPtr cond = or_expr(depth + 1);
      ExprPtr other = accept_name("else") ? expression(depth + 1) : nullptr;
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      return c;
    }
    return e;
  }

  ExprPtr binary(EK kind, std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = make_expr(kind, line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  ExprPtr or_expr(int depth) {
    guard(depth);
    ExprPtr e = and_expr(depth + 1);
    while (at_name("or")) {
      int line = next().line;
      e = binary(EK::kOr, "or", std::move(e), and_expr(depth + 1), line);
    }
    return e;
  }
  ExprPtr and_expr(int depth) {
    ExprPtr e = not_expr(depth + 1);
    while (at_name("and")) {
      int line = next().line;
      e = binary(EK::kAnd, "and", std::move(e), not_expr(depth + 1), line);
    }
    return e;
  }
  ExprPtr not_expr(int depth) {
    guard(depth);
    if (at_name("not")) {
      auto e = make_expr(EK::kNot, next().line);
      e->args.push_back(not_expr(depth + 1));
      return e;
    }
    return compare(depth + 1);
  }
  ExprPtr compare(int depth) {
    ExprPtr e = math1(depth + 1);
    for (;;) {
      const Token& t = peek();
      int line = t.line;
      if (t.kind == TK::kOp && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" ||
                                t.text == "<=" || t.text == ">=")) {
        std::string op = next().text;
        e = binary(EK::kBinary, op, std::move(e), math1(depth + 1), line);
      } else if (accept_name("in")) {
        e = binary(EK::kBinary, "in", std::move(e), math1(depth + 1), line);
      } else if (at_name("not") && peek(1).kind == TK::kName && peek(1).text == "in") {
        next(), next();
        e = binary(EK::kBinary, "in", std::move(e), math1(depth + 1), line);
        e->negated = true;
      } else {
        return e;
      }
    }
  }
  template <typename Sub>
  ExprPtr left_assoc(std::initializer_list<const char*> ops, int depth, Sub sub) {
    ExprPtr e = (this->*sub)(depth + 1);
    for (;;) {
      const char* hit = nullptr;
      for (const char* op : ops)
        if (at_op(op)) hit = op;
      if (hit == nullptr) return e;
      int line = next().line;
      e = binary(EK::kBinary, hit, std::move(e), (this->*sub)(depth + 1), line);
    }
  }
  ExprPtr math1(int depth) { return left_assoc({"+", "-"}, depth, &Parser::concat); }
  ExprPtr concat(int depth) { return left_assoc({"~"}, depth, &Parser::math2); }
  ExprPtr math2(int depth) { return left_assoc({"*", "/", "//", "%"}, depth, &Parser::power); }
  ExprPtr power(int depth) { return left_assoc({"**"}, depth, &Parser::unary_filtered); }
  ExprPtr unary_filtered(int depth) { return unary(depth, true); }

  ExprPtr unary(int depth, bool with_filter) {
    guard(depth);
    ExprPtr e;
    if (at_op("-")) {
      e = make_expr(EK::kNeg, next().line);
      e->args.push_back(unary(depth + 1, false));
    } else if (accept_op("+")) {
      e = unary(depth + 1, false);
    } else {
      e = postfix(primary(depth + 1), depth + 1);
    }
    return with_filter ? filters(std::move(e), depth + 1) : std::move(e);
  }

  ExprPtr primary(int depth) {
    guard(depth);
    const Token& t = peek();
    int line = t.line;
    auto lit = [&](Value v) {
      auto e = make_expr(EK::kLiteral, line);
      e->literal = std::move(v);
      return e;
    };
    switch (t.kind) {
      case TK::kName: {
        std::string n = next().text;
        if (n == "true" || n == "True") return lit(Value::boolean(true));
        if (n == "false" || n == "False") return lit(Value::boolean(false));
        if (n == "none" || n == "None") return lit(Value::none());
        auto e = make_expr(EK::kName, line);
        e->name = n;
        return e;
      }
      case TK::kString: {
        std::string s = next().text;
        while (peek().kind == TK::kString) s += next().text;  // adjacent literals join
        return lit(Value::string(std::move(s)));
      }
      case TK::kInt: return lit(Value::integer(next().i));
      case TK::kFloat: return lit(Value::number(next().f));
      default: break;
    }
    if (accept_op("(")) {
      if (accept_op(")")) return make_expr(EK::kList, line);
      ExprPtr e = expression(depth + 1);
      if (!at_op(",")) {
        expect_op(")");
        return e;
      }
      auto tuple = make_expr(EK::kList, line);  // tuples behave as lists here
      tuple->args.push_back(std::move(e));
      while (accept_op(",") && !at_op(")")) tuple->args.push_back(expression(depth + 1));
      expect_op(")");
      return tuple;
    }
    if (accept_op("[")) {
      auto e = make_expr(EK::kList, line);
      while (!accept_op("]")) {
        e->args.push_back(expression(depth + 1));
        if (!at_op("]")) expect_op(",");
      }
      return e;
    }
    if (accept_op("{")) {
      auto e = make_expr(EK::kDict, line);
      while (!accept_op("}")) {
        e->args.push_back(expression(depth + 1));
        expect_op(":");
        e->args.push_back(expression(depth + 1));
        if (!at_op("}")) expect_op(",");
      }
      return e;
    }
    unexpected("an expression");
  }

  void call_args(Expr& e, int depth) {
    while (!accept_op(")")) {
      if (peek().kind == TK::kName && peek(1).kind == TK::kOp && peek(1).text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), expression(depth + 1));
      } else {
        if (!e.kwargs.empty()) error_at(peek().line, "positional argument after a keyword argument");
        e.args.push_back(expression(depth + 1));
      }
      if (!at_op(")")) expect_op(",");
    }
  }

  ExprPtr postfix(ExprPtr e, int depth) {
    for (;;) {
      int line = peek().line;
      if (accept_op(".")) {
        auto a = make_expr(EK::kAttr, line);
        if (peek().kind == TK::kInt) {  // foo.0 is foo[0]
          a->kind = EK::kIndex;
          a->args.push_back(std::move(e));
          auto k = make_expr(EK::kLiteral, line);
          k->literal = Value::integer(next().i);
          a->args.push_back(std::move(k));
        } else {
          a->name = expect_name();
          a->args.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (accept_op("[")) {
        e = subscript(std::move(e), line, depth);
      } else if (accept_op("(")) {
        auto c = make_expr(EK::kCall, line);
        c->args.push_back(std::move(e));
        call_args(*c, depth);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr obj, int line, int depth) {
    ExprPtr start = at_op(":") ? nullptr : expression(depth + 1);
    if (accept_op("]")) {
      auto e = make_expr(EK::kIndex, line);
      e->args.push_back(std::move(obj));
      e->args.push_back(std::move(start));
      return e;
    }
    expect_op(":");
    auto e = make_expr(EK::kSlice, line);
    e->args.push_back(std::move(obj));
    e->args.push_back(std::move(start));
    e->args.push_back(at_op(":") || at_op("]") ? nullptr : expression(depth + 1));
    e->args.push_back(accept_op(":") && !at_op("]") ? expression(depth + 1) : nullptr);
    expect_op("]");
    return e;
  }

  // `x | f(args)`, `x is [not] test [arg]` (jinja2's parse_filter_expr).
  ExprPtr filters(ExprPtr e, int depth) {
    for (;;) {
      int line = peek().line;
      if (accept_op("|")) {
        auto f = make_expr(EK::kFilter, line);
        f->name = expect_name();
        f->args.push_back(std::move(e));
        if (accept_op("(")) call_args(*f, depth);
        e = std::move(f);
      } else if (accept_name("is")) {
        auto t = make_expr(EK::kTest, line);
        t->negated = accept_name("not");
        t->name = expect_name();
        t->args.push_back(std::move(e));
        const Token& n = peek();
        if (accept_op("(")) {
          call_args(*t, depth);
        } else if ((n.kind == TK::kName || n.kind == TK::kString || n.kind == TK::kInt ||
                    n.kind == TK::kFloat || at_op("[") || at_op("{")) &&
                   !(n.kind == TK::kName && (n.text == "else" || n.text == "or" || n.text == "and"))) {
          t->args.push_back(postfix(primary(depth + 1), depth + 1));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
};

}  // namespace

std::unique_ptr<Program> parse_tokens(std::vector<Token> tokens) {
  return Parser(std::move(tokens)).run();
}

}  // namespace aha::tokenizer::jinja
