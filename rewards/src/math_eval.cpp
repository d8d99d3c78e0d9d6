// Evaluation of parsed answers: exact rationals where possible, doubles otherwise, with \pm
// sign choices and variable bindings; every node costs one step of the Budget.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "math_internal.h"

namespace aha::rewards::detail {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kE = 2.71828182845904523536;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Value nan_value() { return Value::of_d(kNaN); }

Value arith_value(K kind, const Value& x, const Value& y);

// The uncertainty of a result from those of its operands (first order).
Value with_unc(K kind, Value r, const Value& x, const Value& y) {
  if (x.unc == 0 && y.unc == 0) return r;
  double ax = std::fabs(x.d), ay = std::fabs(y.d);
  switch (kind) {
    case K::kAdd: case K::kSub: r.unc = x.unc + y.unc; break;
    case K::kMul: r.unc = ax * y.unc + ay * x.unc; break;
    case K::kDiv: r.unc = ay == 0 ? 0 : (x.unc + std::fabs(r.d) * y.unc) / ay; break;
    default: r.unc = 0;
  }
  if (x.decimals >= 0 && y.decimals >= 0) {
    r.decimals = std::min(x.decimals, y.decimals);
  } else {
    r.decimals = std::max(x.decimals, y.decimals);
  }
  if (!std::isfinite(r.unc)) r.unc = 0;
  return r;
}

Value arith(K kind, const Value& x, const Value& y) {
  return with_unc(kind, arith_value(kind, x, y), x, y);
}

Value arith_value(K kind, const Value& x, const Value& y) {
  if (x.exact && y.exact) {
    Q r;
    bool ok = false;
    switch (kind) {
      case K::kAdd: ok = q_add(x.q, y.q, r); break;
      case K::kSub: ok = q_add(x.q, Q{-y.q.num, y.q.den}, r); break;
      case K::kMul: ok = q_mul(x.q, y.q, r); break;
      case K::kDiv:
        if (y.q.num == 0) return nan_value();
        ok = q_div(x.q, y.q, r);
        break;
      default: break;
    }
    if (ok) return Value::of_q(r, x.approx || y.approx);
  }
  switch (kind) {
    case K::kAdd: return Value::of_d(x.d + y.d);
    case K::kSub: return Value::of_d(x.d - y.d);
    case K::kMul: return Value::of_d(x.d * y.d);
    case K::kDiv: return Value::of_d(y.d == 0 ? kNaN : x.d / y.d);
    default: return nan_value();
  }
}

Value power(const Value& base, const Value& exponent) {
  if (base.exact && exponent.exact) {
    Q r;
    bool approx = base.approx || exponent.approx;
    if (exponent.q.den == 1 && q_pow(base.q, static_cast<int64_t>(std::clamp<i128>(
                                                  exponent.q.num, -100000, 100000)),
                                     r)) {
      return Value::of_q(r, approx);
    }
    // rational exponent p/q: exact q-th root, then the p-th power
    if (exponent.q.den <= 64 && exponent.q.num >= -256 && exponent.q.num <= 256) {
      Q root;
      if (q_root(base.q, static_cast<int64_t>(exponent.q.den), root) &&
          q_pow(root, static_cast<int64_t>(exponent.q.num), r)) {
        return Value::of_q(r, approx);
      }
    }
  }
  if (base.d < 0 && exponent.exact && exponent.q.den % 2 == 1) {
    double m = std::pow(-base.d, exponent.d);
    return Value::of_d(exponent.q.num % 2 == 0 ? m : -m);
  }
  return Value::of_d(std::pow(base.d, exponent.d));
}

Value factorial(const Value& x) {
  if (x.exact && x.q.den == 1 && x.q.num >= 0 && x.q.num <= 30) {
    Q r{1, 1};
    for (i128 k = 2; k <= x.q.num; ++k) q_mul(r, Q{k, 1}, r);
    return Value::of_q(r);
  }
  if (x.d < 0 && x.d == std::floor(x.d)) return nan_value();
  if (x.d > 171) return Value::of_d(std::numeric_limits<double>::infinity());
  return Value::of_d(std::tgamma(x.d + 1));
}

Value binomial(const Value& n, const Value& k) {
  if (n.exact && k.exact && n.q.den == 1 && k.q.den == 1 && k.q.num >= 0 && n.q.num >= 0 &&
      k.q.num <= n.q.num && k.q.num < 200) {
    Q r{1, 1};
    bool ok = true;
    for (i128 i = 0; i < k.q.num && ok; ++i) {
      ok = q_mul(r, Q{n.q.num - i, 1}, r) && q_div(r, Q{i + 1, 1}, r);
    }
    if (ok) return Value::of_q(r);
  }
  double lg = std::lgamma(n.d + 1) - std::lgamma(k.d + 1) - std::lgamma(n.d - k.d + 1);
  return Value::of_d(std::exp(lg));
}

// a mod m for integers (the least non-negative residue); NaN otherwise.
Value modulo(const Value& a, const Value& m) {
  if (!a.exact || !m.exact || a.q.den != 1 || m.q.den != 1 || m.q.num == 0) return nan_value();
  i128 n = m.q.num < 0 ? -m.q.num : m.q.num;
  i128 r = a.q.num % n;
  return Value::of_q(Q{r < 0 ? r + n : r, 1});
}

Value apply_function(const std::string& f, const Value& x, const std::optional<Value>& base) {
  double v = x.d;
  if (f == "sin") return Value::of_d(std::sin(v));
  if (f == "cos") return Value::of_d(std::cos(v));
  if (f == "tan") return Value::of_d(std::tan(v));
  if (f == "sec") return Value::of_d(1 / std::cos(v));
  if (f == "csc") return Value::of_d(1 / std::sin(v));
  if (f == "cot") return Value::of_d(1 / std::tan(v));
  if (f == "arcsin") return Value::of_d(std::asin(v));
  if (f == "arccos") return Value::of_d(std::acos(v));
  if (f == "arctan") return Value::of_d(std::atan(v));
  if (f == "sinh") return Value::of_d(std::sinh(v));
  if (f == "cosh") return Value::of_d(std::cosh(v));
  if (f == "tanh") return Value::of_d(std::tanh(v));
  if (f == "exp") return Value::of_d(std::exp(v));
  if (f == "floor") return Value::of_d(std::floor(v));
  if (f == "ceil") return Value::of_d(std::ceil(v));
  if (f == "ln") return Value::of_d(std::log(v));
  if (f == "log") {
    if (base) return Value::of_d(std::log(v) / std::log(base->d));
    return Value::of_d(std::log10(v));
  }
  return nan_value();
}

// Sums and products over at most this many integers are evaluated term by term.
constexpr int64_t kMaxRangeTerms = 1000;

int pm_ordinal(const Tree& t, int idx) {
  int n = 0;
  for (int i = 0; i < idx; ++i) n += t.nodes[i].kind == K::kPm;
  return n;
}

// Scalar value of a node; nullopt for non-scalars (tuples, sets, equations...).
}  // namespace

// \sum / \prod over integer bounds, term by term with the index bound; nullopt when a bound
// is not an integer or the range is too long to add up.
static std::optional<Value> index_range(EvalCtx& c, const Node& n) {
  auto lo = eval(c, n.kids[1]);
  auto hi = lo ? eval(c, n.kids[2]) : std::nullopt;
  if (!hi || !lo->exact || !hi->exact || lo->q.den != 1 || hi->q.den != 1) return std::nullopt;
  if (hi->q.num - lo->q.num >= kMaxRangeTerms) return std::nullopt;
  const bool product = n.name == "prod";
  Value acc = Value::of_q(Q{product ? 1 : 0, 1});
  std::vector<Binding> env = c.env;
  env.push_back(Binding{c.tree.nodes[n.kids[0]].name, Value{}});
  EvalCtx inner{c.tree, env, c.pm_mask, c.budget};
  for (i128 k = lo->q.num; k <= hi->q.num; ++k) {
    env.back().value = Value::of_q(Q{k, 1});
    auto term = eval(inner, n.a);
    if (!term) return std::nullopt;
    acc = arith(product ? K::kMul : K::kAdd, acc, *term);
  }
  return acc;
}

// \gcd(a, b, ...) and \lcm(a, b, ...) of integers; nullopt for anything else.
static std::optional<Value> gcd_lcm(EvalCtx& c, const Node& n) {
  const Node& args = c.tree.nodes[n.a];
  if (args.kind != K::kTuple) return std::nullopt;
  i128 acc = n.name == "gcd" ? 0 : 1;
  for (int k : args.kids) {
    auto v = eval(c, k);
    if (!v || !v->exact || v->q.den != 1) return std::nullopt;
    i128 x = v->q.num < 0 ? -v->q.num : v->q.num, a = acc, b = x;
    while (b != 0) a %= b, std::swap(a, b);  // a = gcd(acc, x)
    if (n.name == "gcd") {
      acc = a;
    } else {
      if (x == 0) return Value::of_q(Q{0, 1});
      acc = acc / a * x;
      if (acc > (static_cast<i128>(1) << 100)) return std::nullopt;
    }
  }
  return Value::of_q(Q{acc, 1});
}

std::optional<Value> eval(EvalCtx& c, int idx) {
  if (!c.budget.step()) return std::nullopt;
  const Node& n = c.tree.nodes[idx];
  switch (n.kind) {
    case K::kNum: {
      Value v = n.exact ? Value::of_q(n.q, n.approx) : Value::of_d(n.d);
      if (n.decimals > 0 && n.decimals < 300) {
        v.decimals = n.decimals;
        v.unc = 0.5 * std::pow(10.0, -n.decimals);
      }
      return n.percent ? arith(K::kDiv, v, Value::of_q(Q{100, 1})) : v;
    }
    case K::kVar:
      for (const auto& b : c.env) {
        if (b.name == n.name) return b.value;
      }
      return std::nullopt;
    case K::kPi: return Value::of_d(kPi);
    case K::kE: return Value::of_d(kE);
    case K::kInf: {
      Value v = Value::of_d(std::numeric_limits<double>::infinity());
      v.infinity = true;
      return v;
    }
    case K::kAdd: case K::kSub: case K::kMul: case K::kDiv: case K::kPow: case K::kPm:
    case K::kBinom: case K::kMod: {
      auto x = eval(c, n.a);
      if (!x) return std::nullopt;
      auto y = eval(c, n.b);
      if (!y) return std::nullopt;
      if (n.kind == K::kPow) return power(*x, *y);
      if (n.kind == K::kBinom) return binomial(*x, *y);
      if (n.kind == K::kMod) return modulo(*x, *y);
      if (n.kind == K::kPm) {
        bool minus = (c.pm_mask >> pm_ordinal(c.tree, idx)) & 1u;
        return arith(minus ? K::kSub : K::kAdd, *x, *y);
      }
      return arith(n.kind, *x, *y);
    }
    case K::kNeg: case K::kFact: case K::kPercent: case K::kAbs: {
      auto x = eval(c, n.a);
      if (!x) return std::nullopt;
      if (n.kind == K::kFact) return factorial(*x);
      if (n.kind == K::kPercent) return arith(K::kDiv, *x, Value::of_q(Q{100, 1}));
      bool negate = n.kind == K::kNeg || (x->exact ? x->q.num < 0 : x->d < 0);
      if (!negate) return x;
      Value v = x->exact ? Value::of_q(Q{-x->q.num, x->q.den}, x->approx) : Value::of_d(-x->d);
      v.infinity = x->infinity;
      v.unc = x->unc;
      v.decimals = x->decimals;
      return v;
    }
    case K::kFunc: {
      if (!n.kids.empty()) return index_range(c, n);
      if (n.name == "gcd" || n.name == "lcm") return gcd_lcm(c, n);
      auto x = eval(c, n.a);
      if (!x) return std::nullopt;
      if ((n.name == "floor" || n.name == "ceil") && x->exact) {  // exact on rationals
        i128 q = x->q.num / x->q.den, r = x->q.num % x->q.den;
        if (r != 0 && (x->q.num < 0) == (n.name == "floor")) q += n.name == "floor" ? -1 : 1;
        return Value::of_q(Q{q, 1}, x->approx);
      }
      std::optional<Value> base;
      if (n.b >= 0) {
        base = eval(c, n.b);
        if (!base) return std::nullopt;
      }
      return apply_function(n.name, *x, base);
    }
    default:
      return std::nullopt;
  }
}

bool has_index_range(const Tree& t, int idx) {
  const Node& n = t.nodes[idx];
  if (n.kind == K::kFunc && !n.kids.empty()) return true;
  if (n.a >= 0 && has_index_range(t, n.a)) return true;
  if (n.b >= 0 && has_index_range(t, n.b)) return true;
  for (int k : n.kids) {
    if (has_index_range(t, k)) return true;
  }
  return false;
}

void collect_vars(const Tree& t, int idx, std::vector<std::string>& vars, int& n_pm) {
  const Node& n = t.nodes[idx];
  if (n.kind == K::kFunc && !n.kids.empty()) {  // a sum's index is bound, not free
    std::vector<std::string> body;
    collect_vars(t, n.a, body, n_pm);
    for (auto& v : body) {
      if (v != t.nodes[n.kids[0]].name && std::find(vars.begin(), vars.end(), v) == vars.end()) {
        vars.push_back(std::move(v));
      }
    }
    collect_vars(t, n.kids[1], vars, n_pm);
    collect_vars(t, n.kids[2], vars, n_pm);
    return;
  }
  if (n.kind == K::kVar && std::find(vars.begin(), vars.end(), n.name) == vars.end()) {
    vars.push_back(n.name);
  }
  n_pm += n.kind == K::kPm;
  if (n.a >= 0) collect_vars(t, n.a, vars, n_pm);
  if (n.b >= 0) collect_vars(t, n.b, vars, n_pm);
  for (int k : n.kids) collect_vars(t, k, vars, n_pm);
}

}  // namespace aha::rewards::detail
