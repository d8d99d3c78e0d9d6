// Jinja builtins that chat templates use: filters, tests, str/dict methods and the global
// functions HF provides (raise_exception, strftime_now) besides jinja2's (range, namespace).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "jinja_internal.h"

namespace aha::tokenizer::jinja {
namespace {

using K = Value::Kind;

const Value* kwarg(const Kwargs& kwargs, const char* name) {
  for (const auto& [k, v] : kwargs)
    if (k == name) return &v;
  return nullptr;
}

// Positional argument k, else keyword `name`, else null.
const Value* arg(const ValueList& args, const Kwargs& kwargs, size_t k, const char* name) {
  return k < args.size() ? &args[k] : kwarg(kwargs, name);
}

const std::string& need_string(const Value* v, const char* what, int line) {
  if (v == nullptr || !v->is(K::kString)) error_at(line, what, " needs a string argument");
  return v->s;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.strip/lstrip/rstrip: whitespace, or any of `chars` (code points).
std::string strip(const std::string& s, const Value* chars, bool left, bool right, int line) {
  std::vector<std::string> cs = utf8_chars(s), set;
  if (chars != nullptr && !chars->is(K::kNone)) set = utf8_chars(need_string(chars, "strip", line));
  auto strip_it = [&](const std::string& c) {
    return chars == nullptr || chars->is(K::kNone) ? (c.size() == 1 && is_ws(c[0]))
                                                   : std::find(set.begin(), set.end(), c) != set.end();
  };
  size_t a = 0, b = cs.size();
  while (left && a < b && strip_it(cs[a])) ++a;
  while (right && b > a && strip_it(cs[b - 1])) --b;
  std::string out;
  for (size_t k = a; k < b; ++k) out += cs[k];
  return out;
}

Value split(const std::string& s, const Value* sep, const Value* maxsplit, int line) {
  int64_t limit = maxsplit && maxsplit->is(K::kInt) ? maxsplit->i : -1;
  ValueList parts;
  if (sep == nullptr || sep->is(K::kNone)) {
    size_t k = 0;
    while (k < s.size()) {
      while (k < s.size() && is_ws(s[k])) ++k;
      if (k == s.size()) break;
      if (limit >= 0 && int64_t(parts.size()) == limit) {
        std::string rest = s.substr(k);
        while (!rest.empty() && is_ws(rest.back())) rest.pop_back();
        parts.push_back(Value::string(rest));
        break;
      }
      size_t e = k;
      while (e < s.size() && !is_ws(s[e])) ++e;
      parts.push_back(Value::string(s.substr(k, e - k)));
      k = e;
    }
    return Value::make_list(std::move(parts));
  }
  const std::string& d = need_string(sep, "split", line);
  if (d.empty()) error_at(line, "split: empty separator");
  size_t k = 0;
  for (;;) {
    size_t e = s.find(d, k);
    if (e == std::string::npos || (limit >= 0 && int64_t(parts.size()) == limit)) break;
    parts.push_back(Value::string(s.substr(k, e - k)));
    k = e + d.size();
  }
  parts.push_back(Value::string(s.substr(k)));
  return Value::make_list(std::move(parts));
}

std::string replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count) {
  if (from.empty()) return s;
  std::string out;
  size_t k = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    size_t e = s.find(from, k);
    if (e == std::string::npos) break;
    out += s.substr(k, e - k) + to;
    k = e + from.size();
  }
  return out + s.substr(k);
}

std::string map_case(std::string s, int (*f)(int)) {
  for (char& c : s) c = char(f(static_cast<unsigned char>(c)));
  return s;
}

std::string title(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = char(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = true;
    }
  }
  return out;
}

bool starts_or_ends(const Value& s, const Value* affix, bool start, int line) {
  if (affix != nullptr && affix->is(K::kList)) {
    for (const Value& a : *affix->list)
      if (starts_or_ends(s, &a, start, line)) return true;
    return false;
  }
  const std::string& a = need_string(affix, start ? "startswith" : "endswith", line);
  return start ? s.s.starts_with(a) : s.s.ends_with(a);
}

bool string_method(const Value& obj, const std::string& name, const ValueList& args,
                   const Kwargs& kw, int line, Value& out) {
  const std::string& s = obj.s;
  const Value* a0 = args.empty() ? nullptr : &args[0];
  if (name == "startswith" || name == "endswith")
    out = Value::boolean(starts_or_ends(obj, a0, name == "startswith", line));
  else if (name == "strip" || name == "lstrip" || name == "rstrip")
    out = Value::string(strip(s, a0, name != "rstrip", name != "lstrip", line));
  else if (name == "split") out = split(s, arg(args, kw, 0, "sep"), arg(args, kw, 1, "maxsplit"), line);
  else if (name == "upper") out = Value::string(map_case(s, ::toupper));
  else if (name == "lower") out = Value::string(map_case(s, ::tolower));
  else if (name == "title") out = Value::string(title(s));
  else if (name == "capitalize") out = Value::string(s.empty() ? s : char(std::toupper(static_cast<unsigned char>(s[0]))) + map_case(s.substr(1), ::tolower));
  else if (name == "replace") {
    const Value* c = arg(args, kw, 2, "count");
    out = Value::string(replace(s, need_string(arg(args, kw, 0, "old"), "replace", line),
                                need_string(arg(args, kw, 1, "new"), "replace", line),
                                c && c->is(K::kInt) ? c->i : -1));
  } else if (name == "find") {
    size_t k = s.find(need_string(a0, "find", line));
    out = Value::integer(k == std::string::npos ? -1 : int64_t(utf8_chars(s.substr(0, k)).size()));
  } else if (name == "count") {
    const std::string& n = need_string(a0, "count", line);
    int64_t c = 0;
    for (size_t k = n.empty() ? std::string::npos : s.find(n); k != std::string::npos; k = s.find(n, k + n.size())) ++c;
    out = Value::integer(c);
  } else if (name == "join") {
    std::string r;
    ValueList items = iterate(a0 ? *a0 : Value(), line);
    for (size_t k = 0; k < items.size(); ++k) r += (k ? s : "") + to_str(items[k]);
    out = Value::string(std::move(r));
  } else {
    return false;
  }
  return true;
}

Value items_of(const Value& d) {
  ValueList items;
  for (const auto& [k, v] : *d.dict) items.push_back(Value::make_list({Value::string(k), v}));
  return Value::make_list(std::move(items));
}

bool dict_method(const Value& obj, const std::string& name, const ValueList& args, Value& out) {
  if (name == "items") {
    out = items_of(obj);
  } else if (name == "keys" || name == "values") {
    ValueList l;
    for (const auto& [k, v] : *obj.dict) l.push_back(name == "keys" ? Value::string(k) : v);
    out = Value::make_list(std::move(l));
  } else if (name == "get") {
    const Value* v = !args.empty() && args[0].is(K::kString) ? obj.find(args[0].s) : nullptr;
    out = v ? *v : args.size() > 1 ? args[1] : Value::none();
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool call_method(const Value& obj, const std::string& name, const ValueList& args,
                 const Kwargs& kwargs, int line, Value& out) {
  if (obj.is_undefined()) error_at(line, "cannot call '", name, "' on an undefined value");
  if (obj.is(K::kString)) return string_method(obj, name, args, kwargs, line, out);
  if (obj.is(K::kDict)) return dict_method(obj, name, args, out);
  return false;
}

bool call_global(const std::string& name, const ValueList& args, const Kwargs& kwargs, int line,
                 Value& out) {
  if (name == "raise_exception")
    error_at(line, "raise_exception: ", args.empty() ? "" : to_str(args[0]));
  if (name == "namespace" || name == "dict") {
    ValueDict d;
    if (!args.empty() && args[0].is(K::kDict)) d = *args[0].dict;
    for (const auto& [k, v] : kwargs) d.emplace_back(k, v);
    out = Value::make_dict(std::move(d), name == "namespace" ? K::kNamespace : K::kDict);
    return true;
  }
  if (name == "range") {
    int64_t a = 0, b = 0, st = 1;
    for (const Value& v : args)
      if (!v.is(K::kInt)) error_at(line, "range() needs integer arguments");
    if (args.size() == 1) b = args[0].i;
    else if (args.size() >= 2) a = args[0].i, b = args[1].i, st = args.size() > 2 ? args[2].i : 1;
    if (st == 0 || args.empty() || args.size() > 3) error_at(line, "bad range() arguments");
    int64_t n = st > 0 ? (b - a + st - 1) / st : (a - b - st - 1) / -st;
    if (n > 1'000'000) error_at(line, "range() of more than 1000000 items");
    ValueList l;
    for (int64_t k = 0; k < n; ++k) l.push_back(Value::integer(a + k * st));
    out = Value::make_list(std::move(l));
    return true;
  }
  if (name == "strftime_now") {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[256];
    size_t n = std::strftime(buf, sizeof(buf), args.empty() ? "" : to_str(args[0]).c_str(), &tm);
    out = Value::string(std::string(buf, n));
    return true;
  }
  return false;
}

namespace {

Value attr_of(const Value& v, const std::string& attr, int line) {
  Value cur = v;
  size_t k = 0;
  while (k <= attr.size()) {
    size_t e = attr.find('.', k);
    if (e == std::string::npos) e = attr.size();
    cur = cur.is_undefined() ? cur : subscript(cur, Value::string(attr.substr(k, e - k)), line);
    k = e + 1;
  }
  return cur;
}

// selectattr / rejectattr / select / reject.
Value select(const std::string& name, const Value& v, const ValueList& args, int line) {
  bool by_attr = name.ends_with("attr"), keep = name.starts_with("select");
  size_t first = by_attr ? 1 : 0;
  if (by_attr && (args.empty() || !args[0].is(K::kString))) error_at(line, name, " needs an attribute name");
  ValueList out;
  for (const Value& item : iterate(v, line)) {
    Value x = by_attr ? attr_of(item, args[0].s, line) : item;
    bool pass = args.size() > first
                    ? apply_test(to_str(args[first]), x, ValueList(args.begin() + long(first) + 1, args.end()), line)
                    : truthy(x);
    if (pass == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value first_or_last(const Value& v, bool first, int line) {
  if (v.is(K::kString)) {
    auto cs = utf8_chars(v.s);
    return cs.empty() ? Value() : Value::string(first ? cs.front() : cs.back());
  }
  ValueList items = iterate(v, line);
  return items.empty() ? Value() : first ? items.front() : items.back();
}

Value to_int(const Value& v) {
  if (v.is(K::kInt) || v.is(K::kBool)) return Value::integer(v.is(K::kBool) ? v.b : v.i);
  if (v.is(K::kFloat)) return Value::integer(int64_t(v.f));
  if (v.is(K::kString)) {
    try {
      size_t used = 0;
      std::string t = strip(v.s, nullptr, true, true, 0);
      int64_t i = std::stoll(t, &used);
      if (used == t.size()) return Value::integer(i);
      return Value::integer(int64_t(std::stod(t)));
    } catch (const std::exception&) {
    }
  }
  return Value::integer(0);
}

Value string_filter(const std::string& name, const Value& v, const ValueList& args, int line) {
  const std::string s = to_str(v);
  if (name == "trim") return Value::string(strip(s, args.empty() ? nullptr : &args[0], true, true, line));
  if (name == "upper") return Value::string(map_case(s, ::toupper));
  if (name == "lower") return Value::string(map_case(s, ::tolower));
  if (name == "title") return Value::string(title(s));
  if (name == "capitalize") return Value::string(s.empty() ? s : char(std::toupper(static_cast<unsigned char>(s[0]))) + map_case(s.substr(1), ::tolower));
  if (name == "replace") {
    if (args.size() < 2) error_at(line, "replace needs two arguments");
    return Value::string(replace(s, to_str(args[0]), to_str(args[1]), args.size() > 2 && args[2].is(K::kInt) ? args[2].i : -1));
  }
  if (name == "indent") {
    int64_t width = !args.empty() && args[0].is(K::kInt) ? args[0].i : 4;
    bool first = args.size() > 1 && truthy(args[1]);
    std::string pad(size_t(std::clamp<int64_t>(width, 0, 1000)), ' '), out = first && !s.empty() ? pad : "";
    for (size_t k = 0; k < s.size(); ++k) {
      out += s[k];
      if (s[k] == '\n' && k + 1 < s.size() && s[k + 1] != '\n') out += pad;
    }
    return Value::string(out);
  }
  return Value::string(s);  // string, safe, e, escape-free templates: text as is
}

}  // namespace

Value apply_filter(const std::string& name, const Value& v, const ValueList& args,
                   const Kwargs& kwargs, int line) {
  if (name == "tojson") {
    const Value* indent = arg(args, kwargs, 0, "indent");
    const Value* sort = kwarg(kwargs, "sort_keys");
    return Value::string(to_json(v, indent && indent->is(K::kInt) ? int(std::clamp<int64_t>(indent->i, 0, 64)) : -1,
                                 sort && truthy(*sort)));
  }
  if (name == "length" || name == "count") {
    int64_t n = length_of(v);
    if (n < 0) error_at(line, "object of type '", kind_name(v.kind), "' has no length");
    return Value::integer(n);
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list({});
    if (!v.is_mapping()) error_at(line, "items needs a mapping, got '", kind_name(v.kind), "'");
    return items_of(v);
  }
  if (name == "default" || name == "d") {
    bool boolean = args.size() > 1 && truthy(args[1]);
    bool use_default = v.is_undefined() || (boolean && !truthy(v));
    return use_default ? (args.empty() ? Value::string("") : args[0]) : v;
  }
  if (name == "first" || name == "last") return first_or_last(v, name == "first", line);
  if (name == "list") return Value::make_list(iterate(v, line));
  if (name == "reverse") {
    const Value back = Value::integer(-1);
    if (v.is(K::kString)) return slice(v, nullptr, nullptr, &back, line);
    ValueList l = iterate(v, line);
    std::reverse(l.begin(), l.end());
    return Value::make_list(std::move(l));
  }
  if (name == "join") {
    const Value* attr = kwarg(kwargs, "attribute");
    std::string sep = args.empty() ? "" : to_str(args[0]), out;
    ValueList items = iterate(v, line);
    for (size_t k = 0; k < items.size(); ++k)
      out += (k ? sep : "") + to_str(attr ? attr_of(items[k], to_str(*attr), line) : items[k]);
    return Value::string(std::move(out));
  }
  if (name == "map") {
    const Value* attr = kwarg(kwargs, "attribute");
    ValueList out;
    for (const Value& item : iterate(v, line))
      out.push_back(attr ? attr_of(item, to_str(*attr), line)
                         : apply_filter(args.empty() ? "" : to_str(args[0]), item,
                                        args.empty() ? args : ValueList(args.begin() + 1, args.end()), {}, line));
    return Value::make_list(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr")
    return select(name, v, args, line);
  if (name == "unique") {
    ValueList out;
    for (const Value& item : iterate(v, line))
      if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return equal(o, item); })) out.push_back(item);
    return Value::make_list(std::move(out));
  }
  if (name == "int") return to_int(v);
  if (name == "float") {
    if (v.is_number()) return Value::number(v.as_double());
    try {
      return Value::number(v.is(K::kString) ? std::stod(v.s) : 0.0);
    } catch (const std::exception&) {
      return Value::number(0.0);
    }
  }
  if (name == "abs") {
    if (v.is(K::kFloat)) return Value::number(std::fabs(v.f));
    if (v.is(K::kInt)) return Value::integer(v.i < 0 ? -v.i : v.i);
    error_at(line, "abs needs a number");
  }
  if (name == "trim" || name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "replace" || name == "indent" || name == "string" || name == "safe" || name == "e" ||
      name == "escape")
    return string_filter(name, v, args, line);
  error_at(line, "unknown filter '", name, "'");
}

bool apply_test(const std::string& name, const Value& v, const ValueList& args, int line) {
  auto num_arg = [&]() -> const Value& {
    if (args.empty()) error_at(line, "test '", name, "' needs an argument");
    return args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is(K::kNone);
  if (name == "string") return v.is(K::kString);
  if (name == "number") return v.is(K::kInt) || v.is(K::kFloat);
  if (name == "integer") return v.is(K::kInt);
  if (name == "float") return v.is(K::kFloat);
  if (name == "boolean") return v.is(K::kBool);
  if (name == "true") return v.is(K::kBool) && v.b;
  if (name == "false") return v.is(K::kBool) && !v.b;
  if (name == "mapping") return v.is_mapping();
  if (name == "sequence") return v.is(K::kList) || v.is(K::kString) || v.is(K::kDict);
  if (name == "iterable") return v.is(K::kList) || v.is(K::kString) || v.is(K::kDict);
  if (name == "callable") return v.is(K::kMacro);
  if (name == "even" || name == "odd") {
    if (!v.is(K::kInt)) error_at(line, "test '", name, "' needs an integer");
    return (v.i % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    const Value& d = num_arg();
    if (!v.is(K::kInt) || !d.is(K::kInt) || d.i == 0) error_at(line, "divisibleby needs non-zero integers");
    return v.i % d.i == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, num_arg());
  if (name == "ne" || name == "!=") return !equal(v, num_arg());
  if (name == "lt" || name == "gt" || name == "le" || name == "ge") {
    static const char* ops[] = {"<", ">", "<=", ">="};
    const char* op = ops[name == "lt" ? 0 : name == "gt" ? 1 : name == "le" ? 2 : 3];
    return binary_op(op, v, num_arg(), line).b;
  }
  if (name == "in") return binary_op("in", v, num_arg(), line).b;
  if (name == "sameas") return equal(v, num_arg()) && v.kind == num_arg().kind;
  error_at(line, "unknown test '", name, "'");
}

}  // namespace aha::tokenizer::jinja
