// Jinja evaluator: runs the statement tree against a context, with jinja2's scoping (each loop
// iteration and macro call gets its own frame; namespace() objects carry values out of loops)
// and the limits of jinja.h.
#include "jinja_internal.h"

namespace aha::tokenizer::jinja {

using K = Value::Kind;
using EK = Expr::Kind;
using SK = Stmt::Kind;

class Renderer {
 public:
  Renderer(const Limits& limits, std::string& out) : limits_(limits), out_(out) {}

  void run(const Body& body, const Value& context) {
    frames_.push_back(context.dict ? *context.dict : ValueDict{});
    frames_.emplace_back();
    exec(body);
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  void step(int line) {
    if (++steps_ > limits_.max_steps)
      error_at(line, "the template ran more than ", limits_.max_steps, " steps (an endless loop?)");
  }
  void emit(const std::string& s, int line) {
    if (int64_t(out_.size() + s.size()) > limits_.max_output_bytes)
      error_at(line, "the output exceeds ", limits_.max_output_bytes, " bytes");
    out_ += s;
  }

  Value lookup(const std::string& name) const {
    for (auto f = frames_.rbegin(); f != frames_.rend(); ++f)
      for (const auto& [k, v] : *f)
        if (k == name) return v;
    return Value();
  }
  void assign(const std::string& name, Value v) {
    for (auto& [k, old] : frames_.back())
      if (k == name) {
        old = std::move(v);
        return;
      }
    frames_.back().emplace_back(name, std::move(v));
  }

  Flow exec(const Body& body) {
    for (const auto& s : body) {
      Flow f = exec_stmt(*s);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow exec_stmt(const Stmt& s) {
    step(s.line);
    switch (s.kind) {
      case SK::kText: emit(s.text, s.line); break;
      case SK::kOutput: emit(to_str(eval(*s.expr)), s.line); break;
      case SK::kIf:
        for (const auto& [cond, body] : s.branches)
          if (truthy(eval(*cond))) return exec(body);
        return exec(s.else_body);
      case SK::kFor: return exec_for(s);
      case SK::kSet: set(s, eval(*s.expr)); break;
      case SK::kSetBlock: {
        std::string saved;
        std::swap(saved, out_);
        exec(s.body);
        std::swap(saved, out_);
        set(s, Value::string(std::move(saved)));
        break;
      }
      case SK::kMacro: {
        Value m;
        m.kind = K::kMacro;
        m.macro = &s;
        assign(s.targets[0], std::move(m));
        break;
      }
      case SK::kBreak: return Flow::kBreak;
      case SK::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void set(const Stmt& s, Value v) {
    if (s.attr.empty()) return assign(s.targets[0], std::move(v));
    Value ns = lookup(s.targets[0]);
    if (!ns.is(K::kNamespace))
      error_at(s.line, "cannot set '", s.attr, "' on '", s.targets[0], "': not a namespace()");
    for (auto& [k, old] : *ns.dict)
      if (k == s.attr) {
        old = std::move(v);
        return;
      }
    ns.dict->emplace_back(s.attr, std::move(v));
  }

  void bind(const Stmt& s, const Value& item) {
    if (s.targets.size() == 1) return assign(s.targets[0], item);
    if (!item.is(K::kList) || item.list->size() != s.targets.size())
      error_at(s.line, "cannot unpack ", to_str(item).substr(0, 60), " into ", s.targets.size(),
               " loop variables");
    for (size_t k = 0; k < s.targets.size(); ++k) assign(s.targets[k], (*item.list)[k]);
  }

  Flow exec_for(const Stmt& s) {
    ValueList all = iterate(eval(*s.expr), s.line), items;
    for (auto& item : all) {
      if (s.filter) {
        step(s.line);
        frames_.emplace_back();
        bind(s, item);
        bool keep = truthy(eval(*s.filter));
        frames_.pop_back();
        if (!keep) continue;
      }
      items.push_back(std::move(item));
    }
    if (items.empty()) return exec(s.else_body);
    const int64_t n = int64_t(items.size());
    for (int64_t k = 0; k < n; ++k) {
      step(s.line);
      frames_.emplace_back();
      bind(s, items[size_t(k)]);
      assign("loop", Value::make_dict({{"index", Value::integer(k + 1)},
                                       {"index0", Value::integer(k)},
                                       {"revindex", Value::integer(n - k)},
                                       {"revindex0", Value::integer(n - k - 1)},
                                       {"first", Value::boolean(k == 0)},
                                       {"last", Value::boolean(k == n - 1)},
                                       {"length", Value::integer(n)},
                                       {"previtem", k > 0 ? items[size_t(k - 1)] : Value()},
                                       {"nextitem", k + 1 < n ? items[size_t(k + 1)] : Value()}}));
      Flow f = exec(s.body);
      frames_.pop_back();
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  Value call_macro(const Stmt& m, const ValueList& args, const Kwargs& kwargs, int line) {
    if (++depth_ > limits_.max_depth)
      error_at(line, "macro calls nested deeper than ", limits_.max_depth);
    if (args.size() > m.params.size())
      error_at(line, "macro '", m.targets[0], "' takes ", m.params.size(), " arguments");
    // A macro sees the context and the template's top-level variables, as in jinja2.
    std::vector<ValueDict> saved;
    std::swap(saved, frames_);
    frames_ = {saved[0], saved[1], {}};
    for (size_t k = 0; k < m.params.size(); ++k) {
      const auto& [name, def] = m.params[k];
      Value v = k < args.size() ? args[k] : def ? eval(*def) : Value();
      for (const auto& [key, kv] : kwargs)
        if (key == name) v = kv;
      assign(name, std::move(v));
    }
    std::string text;
    std::swap(text, out_);
    exec(m.body);
    std::swap(text, out_);
    frames_ = std::move(saved);
    --depth_;
    return Value::string(std::move(text));
  }

  void eval_args(const Expr& e, size_t first, ValueList& args, Kwargs& kwargs) {
    for (size_t k = first; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
    for (const auto& [key, v] : e.kwargs) kwargs.emplace_back(key, eval(*v));
  }

  Value eval_call(const Expr& e) {
    const Expr& callee = *e.args[0];
    ValueList args;
    Kwargs kwargs;
    if (callee.kind == EK::kAttr) {
      Value obj = eval(*callee.args[0]);
      eval_args(e, 1, args, kwargs);
      Value out;
      if (call_method(obj, callee.name, args, kwargs, e.line, out)) return out;
      Value f = obj.is_mapping() ? subscript(obj, Value::string(callee.name), e.line) : Value();
      if (f.is(K::kMacro)) return call_macro(*f.macro, args, kwargs, e.line);
      error_at(e.line, "'", kind_name(obj.kind), "' object has no method '", callee.name, "'");
    }
    Value f = eval(callee);
    eval_args(e, 1, args, kwargs);
    if (f.is(K::kMacro)) return call_macro(*f.macro, args, kwargs, e.line);
    Value out;
    if (callee.kind == EK::kName && f.is_undefined() &&
        call_global(callee.name, args, kwargs, e.line, out))
      return out;
    if (callee.kind == EK::kName && f.is_undefined())
      error_at(e.line, "'", callee.name, "' is undefined");
    error_at(e.line, "'", kind_name(f.kind), "' object is not callable");
  }

  const Value* arg_or_null(const Expr& e, size_t k, Value& slot) {
    if (!e.args[k]) return nullptr;
    slot = eval(*e.args[k]);
    return &slot;
  }

 public:
  Value eval(const Expr& e) {
    switch (e.kind) {
      case EK::kLiteral: return e.literal;
      case EK::kName: return lookup(e.name);
      case EK::kList: {
        ValueList l;
        for (const auto& a : e.args) l.push_back(eval(*a));
        return Value::make_list(std::move(l));
      }
      case EK::kDict: {
        ValueDict d;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          Value key = eval(*e.args[k]);
          if (!key.is(K::kString)) error_at(e.line, "dict keys must be strings here");
          d.emplace_back(key.s, eval(*e.args[k + 1]));
        }
        return Value::make_dict(std::move(d));
      }
      case EK::kAttr: {
        Value obj = eval(*e.args[0]);
        if (obj.is_undefined() && e.args[0]->kind == EK::kName)
          error_at(e.line, "'", e.args[0]->name, "' is undefined");
        return subscript(obj, Value::string(e.name), e.line);
      }
      case EK::kIndex: return subscript(eval(*e.args[0]), eval(*e.args[1]), e.line);
      case EK::kSlice: {
        Value a, b, c;
        Value obj = eval(*e.args[0]);
        return slice(obj, arg_or_null(e, 1, a), arg_or_null(e, 2, b), arg_or_null(e, 3, c), e.line);
      }
      case EK::kCall: return eval_call(e);
      case EK::kFilter: {
        Value v = eval(*e.args[0]);
        ValueList args;
        Kwargs kwargs;
        eval_args(e, 1, args, kwargs);
        return apply_filter(e.name, v, args, kwargs, e.line);
      }
      case EK::kTest: {
        Value v = eval(*e.args[0]);
        ValueList args;
        Kwargs kwargs;
        eval_args(e, 1, args, kwargs);
        return Value::boolean(apply_test(e.name, v, args, e.line) != e.negated);
      }
      case EK::kNot: return Value::boolean(!truthy(eval(*e.args[0])));
      case EK::kNeg: {
        Value v = eval(*e.args[0]);
        if (v.is(K::kInt) || v.is(K::kBool)) return Value::integer(-(v.is(K::kBool) ? v.b : v.i));
        if (v.is(K::kFloat)) return Value::number(-v.f);
        error_at(e.line, "bad operand type for unary -: '", kind_name(v.kind), "'");
      }
      case EK::kAnd: {
        Value a = eval(*e.args[0]);
        return truthy(a) ? eval(*e.args[1]) : a;
      }
      case EK::kOr: {
        Value a = eval(*e.args[0]);
        return truthy(a) ? a : eval(*e.args[1]);
      }
      case EK::kBinary: {
        Value r = binary_op(e.name, eval(*e.args[0]), eval(*e.args[1]), e.line);
        return e.negated ? Value::boolean(!r.b) : r;
      }
      case EK::kCond:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value();
    }
    return Value();
  }

 private:
  const Limits& limits_;
  std::string& out_;
  std::vector<ValueDict> frames_;  // [0] the context, [1] the template's top level, then loops
  int64_t steps_ = 0;
  int depth_ = 0;
};

Template::Template(std::unique_ptr<Program> program) : program_(std::move(program)) {}
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::~Template() = default;

Template Template::parse(std::string_view source, const Options& options) {
  return Template(parse_tokens(lex(source, options)));
}

std::string Template::render(const nlohmann::ordered_json& context, const Limits& limits) const {
  if (!context.is_object() && !context.is_null()) fail("[jinja] the context must be an object");
  std::string out;
  Renderer r(limits, out);
  r.run(program_->body, context.is_null() ? Value::make_dict({}) : Value::from_json(context));
  return out;
}

}  // namespace aha::tokenizer::jinja
