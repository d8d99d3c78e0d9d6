// Internals of the Jinja interpreter (jinja.h): values, tokens, the syntax tree, and the entry
// points of the lexer, parser, evaluator and builtins that the jinja_*.cpp files share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aha/core/error.h"
#include "aha/tokenizer/jinja.h"

namespace aha::tokenizer::jinja {

struct Stmt;
struct Value;
using ValueList = std::vector<Value>;
// Insertion-ordered, as Python dicts are (tojson and items() print in that order).
using ValueDict = std::vector<std::pair<std::string, Value>>;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kMacro };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  // Lists and dicts are shared and never changed after construction; a namespace's dict is the
  // one mutable object (`set ns.x = ..` must be seen by every holder).
  std::shared_ptr<ValueList> list;
  std::shared_ptr<ValueDict> dict;
  const Stmt* macro = nullptr;

  static Value none() { return make(Kind::kNone); }
  static Value boolean(bool v) { Value r = make(Kind::kBool); r.b = v; return r; }
  static Value integer(int64_t v) { Value r = make(Kind::kInt); r.i = v; return r; }
  static Value number(double v) { Value r = make(Kind::kFloat); r.f = v; return r; }
  static Value string(std::string v) { Value r = make(Kind::kString); r.s = std::move(v); return r; }
  static Value make_list(ValueList v);
  static Value make_dict(ValueDict v, Kind kind = Kind::kDict);
  static Value from_json(const nlohmann::ordered_json& j, int depth = 0);

  bool is(Kind k) const { return kind == k; }
  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  bool is_mapping() const { return kind == Kind::kDict || kind == Kind::kNamespace; }
  double as_double() const { return kind == Kind::kFloat ? f : double(kind == Kind::kBool ? b : i); }
  // nullptr when absent.
  const Value* find(std::string_view key) const;

 private:
  static Value make(Kind k) { Value r; r.kind = k; return r; }
};

const char* kind_name(Value::Kind k);
bool truthy(const Value& v);
bool equal(const Value& a, const Value& b);
// Python's str(): None -> "None", True -> "True", lists and dicts as their repr.
std::string to_str(const Value& v);
// HF's tojson: json.dumps(ensure_ascii=False), ", " and ": " separators, or "," with an indent.
std::string to_json(const Value& v, int indent, bool sort_keys);
// Python's len() (code points for strings); -1 for a value without a length.
int64_t length_of(const Value& v);
// The items a `for` walks: list elements, dict keys, string characters. Throws for others.
ValueList iterate(const Value& v, int line);
std::vector<std::string> utf8_chars(std::string_view s);

// ---- tokens ----
struct Token {
  enum class Kind { kText, kExprBegin, kExprEnd, kStmtBegin, kStmtEnd, kName, kString, kInt, kFloat, kOp, kEnd };
  Kind kind;
  std::string text;  // text, name, operator or decoded string literal
  int64_t i = 0;
  double f = 0;
  int line = 1;
};
std::vector<Token> lex(std::string_view source, const Options& options);

// ---- syntax tree ----
struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Expr {
  enum class Kind {
    kLiteral, kName, kList, kDict, kAttr, kIndex, kSlice, kCall, kFilter, kTest, kNot, kNeg,
    kBinary, kAnd, kOr, kCond
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;           // variable, attribute, filter, test or operator
  std::vector<ExprPtr> args;  // operands; kDict: key, value, key, value..; kSlice: null = absent
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;       // `is not`, `not in`
};

using Body = std::vector<std::unique_ptr<Stmt>>;
struct Stmt {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue };
  Kind kind;
  int line = 0;
  std::string text;                  // kText
  ExprPtr expr;                      // output / set value / for iterable
  ExprPtr filter;                    // `for x in xs if cond`
  std::vector<std::string> targets;  // for / set / macro name (targets[0])
  std::string attr;                  // `set ns.attr = ..`
  std::vector<std::pair<ExprPtr, Body>> branches;  // if / elif / else (null condition)
  Body body, else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters and defaults
};

struct Program {
  Body body;
};
std::unique_ptr<Program> parse_tokens(std::vector<Token> tokens);

// ---- evaluation ----
class Renderer;
// Filters, tests, methods and global functions; `args` are positional, `kwargs` named.
using Kwargs = std::vector<std::pair<std::string, Value>>;
Value apply_filter(const std::string& name, const Value& v, const ValueList& args,
                   const Kwargs& kwargs, int line);
bool apply_test(const std::string& name, const Value& v, const ValueList& args, int line);
// Returns false when `name` is not a method of v's type.
bool call_method(const Value& obj, const std::string& name, const ValueList& args,
                 const Kwargs& kwargs, int line, Value& out);
// Returns false when `name` is not a global function.
bool call_global(const std::string& name, const ValueList& args, const Kwargs& kwargs, int line,
                 Value& out);
Value subscript(const Value& obj, const Value& key, int line);
Value slice(const Value& obj, const Value* start, const Value* stop, const Value* step, int line);
Value binary_op(const std::string& op, const Value& a, const Value& b, int line);

template <typename... Args>
[[noreturn]] void error_at(int line, const Args&... args) {
  fail("[jinja] line ", line, ": ", args...);
}

}  // namespace aha::tokenizer::jinja
