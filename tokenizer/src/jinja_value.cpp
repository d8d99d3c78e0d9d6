// Jinja values with Python's semantics: truthiness, equality, str(), HF's tojson, len(),
// iteration, subscripts, slices and the binary operators.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "jinja_internal.h"

namespace aha::tokenizer::jinja {

using K = Value::Kind;

Value Value::make_list(ValueList v) {
  Value r = make(K::kList);
  r.list = std::make_shared<ValueList>(std::move(v));
  return r;
}

Value Value::make_dict(ValueDict v, Kind kind) {
  Value r = make(kind);
  r.dict = std::make_shared<ValueDict>(std::move(v));
  return r;
}

Value Value::from_json(const nlohmann::ordered_json& j, int depth) {
  if (depth > 256) fail("[jinja] context nested deeper than 256 levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return integer(int64_t(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList l;
      for (const auto& e : j) l.push_back(from_json(e, depth + 1));
      return make_list(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueDict d;
      for (const auto& [k, e] : j.items()) d.emplace_back(k, from_json(e, depth + 1));
      return make_dict(std::move(d));
    }
    default: return Value();
  }
}

const Value* Value::find(std::string_view key) const {
  if (!dict) return nullptr;
  for (const auto& [k, v] : *dict)
    if (k == key) return &v;
  return nullptr;
}

const char* kind_name(K k) {
  switch (k) {
    case K::kUndefined: return "undefined";
    case K::kNone: return "NoneType";
    case K::kBool: return "bool";
    case K::kInt: return "int";
    case K::kFloat: return "float";
    case K::kString: return "str";
    case K::kList: return "list";
    case K::kDict: return "dict";
    case K::kNamespace: return "Namespace";
    case K::kMacro: return "Macro";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case K::kUndefined:
    case K::kNone: return false;
    case K::kBool: return v.b;
    case K::kInt: return v.i != 0;
    case K::kFloat: return v.f != 0;
    case K::kString: return !v.s.empty();
    case K::kList: return !v.list->empty();
    case K::kDict: return !v.dict->empty();
    default: return true;
  }
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind != K::kFloat && b.kind != K::kFloat) return a.as_double() == b.as_double() &&
                                                          (a.is(K::kBool) ? a.b : a.i) ==
                                                              (b.is(K::kBool) ? b.b : b.i);
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::kString: return a.s == b.s;
    case K::kList:
      return a.list->size() == b.list->size() &&
             std::equal(a.list->begin(), a.list->end(), b.list->begin(), equal);
    case K::kDict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, v] : *a.dict) {
        const Value* o = b.find(k);
        if (o == nullptr || !equal(v, *o)) return false;
      }
      return true;
    }
    case K::kNamespace: return a.dict == b.dict;
    case K::kMacro: return a.macro == b.macro;
    default: return true;  // none == none, undefined == undefined
  }
}

namespace {

std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), f);
  std::string s(buf, end);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string repr(const Value& v) {
  if (!v.is(K::kString)) return to_str(v);
  char quote = (v.s.find('\'') != std::string::npos && v.s.find('"') == std::string::npos) ? '"'
                                                                                           : '\'';
  std::string out(1, quote);
  for (unsigned char c : v.s) {
    if (c == '\\' || c == quote) out += '\\', out += char(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x", out += hex[c >> 4], out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  return out + quote;
}

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00", out += hex[c >> 4], out += hex[c & 15];
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

void json_write(const Value& v, int indent, bool sort_keys, int level, std::string& out) {
  if (level > 256) fail("[jinja] tojson: value nested deeper than 256 levels");
  auto newline = [&](int lvl) {
    if (indent >= 0) out += '\n', out.append(size_t(indent) * size_t(lvl), ' ');
  };
  const char* sep = indent >= 0 ? "," : ", ";
  switch (v.kind) {
    case K::kUndefined:
    case K::kNone: out += "null"; return;
    case K::kBool: out += v.b ? "true" : "false"; return;
    case K::kInt: out += std::to_string(v.i); return;
    case K::kFloat:
      out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity")
                                                        : float_repr(v.f);
      return;
    case K::kString: json_string(v.s, out); return;
    case K::kList: {
      if (v.list->empty()) { out += "[]"; return; }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += sep;
        newline(level + 1);
        json_write((*v.list)[k], indent, sort_keys, level + 1, out);
      }
      newline(level);
      out += ']';
      return;
    }
    case K::kDict:
    case K::kNamespace: {
      if (v.dict->empty()) { out += "{}"; return; }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : *v.dict) items.push_back(&kv);
      if (sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += sep;
        newline(level + 1);
        json_string(items[k]->first, out);
        out += ": ";
        json_write(items[k]->second, indent, sort_keys, level + 1, out);
      }
      newline(level);
      out += '}';
      return;
    }
    case K::kMacro: fail("[jinja] tojson: a macro is not JSON serializable");
  }
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind) {
    case K::kUndefined: return "";
    case K::kNone: return "None";
    case K::kBool: return v.b ? "True" : "False";
    case K::kInt: return std::to_string(v.i);
    case K::kFloat: return float_repr(v.f);
    case K::kString: return v.s;
    case K::kList: {
      std::string out = "[";
      for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + repr((*v.list)[k]);
      return out + "]";
    }
    case K::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, e] : *v.dict) {
        out += (first ? "" : ", ") + repr(Value::string(key)) + ": " + repr(e);
        first = false;
      }
      return out + "}";
    }
    case K::kNamespace: return "<Namespace>";
    case K::kMacro: return "<Macro>";
  }
  return "";
}

std::string to_json(const Value& v, int indent, bool sort_keys) {
  std::string out;
  json_write(v, indent, sort_keys, 0, out);
  return out;
}

std::vector<std::string> utf8_chars(std::string_view s) {
  std::vector<std::string> chars;
  for (size_t k = 0; k < s.size();) {
    unsigned char c = s[k];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    n = std::min(n, s.size() - k);
    chars.emplace_back(s.substr(k, n));
    k += n;
  }
  return chars;
}

int64_t length_of(const Value& v) {
  switch (v.kind) {
    case K::kUndefined: return 0;
    case K::kString: return int64_t(utf8_chars(v.s).size());
    case K::kList: return int64_t(v.list->size());
    case K::kDict: return int64_t(v.dict->size());
    default: return -1;
  }
}

ValueList iterate(const Value& v, int line) {
  switch (v.kind) {
    case K::kUndefined: return {};
    case K::kList: return *v.list;
    case K::kDict: {
      ValueList keys;
      for (const auto& kv : *v.dict) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case K::kString: {
      ValueList chars;
      for (auto& c : utf8_chars(v.s)) chars.push_back(Value::string(std::move(c)));
      return chars;
    }
    default: error_at(line, "'", kind_name(v.kind), "' object is not iterable");
  }
}

Value subscript(const Value& obj, const Value& key, int line) {
  if (obj.is_undefined()) error_at(line, "cannot read '", to_str(key), "' of an undefined value");
  if (obj.is_mapping()) {
    if (!key.is(K::kString)) return Value();
    const Value* v = obj.find(key.s);
    return v ? *v : Value();
  }
  if ((obj.is(K::kList) || obj.is(K::kString)) && (key.is(K::kInt) || key.is(K::kBool))) {
    std::vector<std::string> chars;
    if (obj.is(K::kString)) chars = utf8_chars(obj.s);
    int64_t n = obj.is(K::kList) ? int64_t(obj.list->size()) : int64_t(chars.size());
    int64_t k = key.is(K::kBool) ? key.b : key.i;
    if (k < 0) k += n;
    if (k < 0 || k >= n) return Value();
    return obj.is(K::kList) ? (*obj.list)[size_t(k)] : Value::string(chars[size_t(k)]);
  }
  return Value();
}

namespace {
int64_t slice_bound(const Value* v, int64_t n, int64_t step, bool is_start, int line) {
  if (v == nullptr || v->is(K::kNone) || v->is_undefined())
    return step > 0 ? (is_start ? 0 : n) : (is_start ? n - 1 : -1);
  if (!v->is(K::kInt)) error_at(line, "slice indices must be integers");
  int64_t k = v->i;
  if (k < 0) k = std::max<int64_t>(k + n, step > 0 ? 0 : -1);
  return std::min(k, step > 0 ? n : n - 1);
}
}  // namespace

Value slice(const Value& obj, const Value* start, const Value* stop, const Value* step, int line) {
  int64_t st = 1;
  if (step != nullptr && !step->is(K::kNone) && !step->is_undefined()) {
    if (!step->is(K::kInt)) error_at(line, "slice step must be an integer");
    st = step->i;
  }
  if (st == 0) error_at(line, "slice step cannot be zero");
  std::vector<std::string> chars;
  if (obj.is(K::kString)) chars = utf8_chars(obj.s);
  else if (!obj.is(K::kList)) error_at(line, "cannot slice a '", kind_name(obj.kind), "'");
  int64_t n = obj.is(K::kList) ? int64_t(obj.list->size()) : int64_t(chars.size());
  int64_t a = slice_bound(start, n, st, true, line), b = slice_bound(stop, n, st, false, line);
  ValueList items;
  std::string text;
  for (int64_t k = a; st > 0 ? k < b : k > b; k += st) {
    if (obj.is(K::kList)) items.push_back((*obj.list)[size_t(k)]);
    else text += chars[size_t(k)];
  }
  return obj.is(K::kList) ? Value::make_list(std::move(items)) : Value::string(std::move(text));
}

namespace {

[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b, int line) {
  if (a.is_undefined() || b.is_undefined())
    error_at(line, "an undefined value used with '", op, "'");
  error_at(line, "unsupported operand types for ", op, ": '", kind_name(a.kind), "' and '",
           kind_name(b.kind), "'");
}

Value arithmetic(const std::string& op, const Value& a, const Value& b, int line) {
  bool ints = a.kind != K::kFloat && b.kind != K::kFloat;
  int64_t x = a.is(K::kBool) ? a.b : a.i, y = b.is(K::kBool) ? b.b : b.i;
  double p = a.as_double(), q = b.as_double();
  if ((op == "/" || op == "//" || op == "%") && q == 0) error_at(line, "division by zero");
  if (op == "+") return ints ? Value::integer(x + y) : Value::number(p + q);
  if (op == "-") return ints ? Value::integer(x - y) : Value::number(p - q);
  if (op == "*") return ints ? Value::integer(x * y) : Value::number(p * q);
  if (op == "/") return Value::number(p / q);
  if (op == "//") {
    if (!ints) return Value::number(std::floor(p / q));
    int64_t d = x / y;
    return Value::integer((x % y != 0 && ((x < 0) != (y < 0))) ? d - 1 : d);
  }
  if (op == "%") {
    if (!ints) return Value::number(p - q * std::floor(p / q));
    int64_t m = x % y;
    return Value::integer((m != 0 && ((m < 0) != (y < 0))) ? m + y : m);
  }
  if (op == "**") return ints && y >= 0 ? Value::integer(int64_t(std::pow(p, q))) : Value::number(std::pow(p, q));
  bad_operands(op, a, b, line);
}

bool contains(const Value& needle, const Value& hay, int line) {
  if (hay.is(K::kString)) {
    if (!needle.is(K::kString)) bad_operands("in", needle, hay, line);
    return hay.s.find(needle.s) != std::string::npos;
  }
  if (hay.is(K::kList))
    return std::any_of(hay.list->begin(), hay.list->end(),
                       [&](const Value& e) { return equal(e, needle); });
  if (hay.is_mapping()) return needle.is(K::kString) && hay.find(needle.s) != nullptr;
  bad_operands("in", needle, hay, line);
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "~") return Value::string(to_str(a) + to_str(b));
  if (op == "==") return Value::boolean(equal(a, b));
  if (op == "!=") return Value::boolean(!equal(a, b));
  if (op == "in") return Value::boolean(contains(a, b, line));
  if (op == "<" || op == ">" || op == "<=" || op == ">=") {
    int c = 0;
    if (a.is_number() && b.is_number()) c = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double();
    else if (a.is(K::kString) && b.is(K::kString)) c = a.s.compare(b.s);
    else bad_operands(op, a, b, line);
    return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
  }
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b, line);
  if (op == "+" && a.is(K::kString) && b.is(K::kString)) return Value::string(a.s + b.s);
  if (op == "+" && a.is(K::kList) && b.is(K::kList)) {
    ValueList l = *a.list;
    l.insert(l.end(), b.list->begin(), b.list->end());
    return Value::make_list(std::move(l));
  }
  if (op == "*" && a.is(K::kString) && b.is(K::kInt)) {
    if (b.i > 0 && int64_t(a.s.size()) * b.i > (int64_t(1) << 26))
      error_at(line, "string repetition result too large");
    std::string out;
    for (int64_t k = 0; k < b.i; ++k) out += a.s;
    return Value::string(std::move(out));
  }
  bad_operands(op, a, b, line);
}

}  // namespace aha::tokenizer::jinja
