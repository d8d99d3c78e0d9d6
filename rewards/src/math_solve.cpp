// Math equivalence of equations: a labelled answer ("x = 3") against a value, two equations
// (the same up to a factor), and a gold equation of degree 1-2 solved against listed roots.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aha/core/rng.h"
#include "math_compare.h"

namespace aha::rewards::detail {

bool is_function_label(const Tree& t, int i) {
  // single letters that name functions in answers; "x(x+1)" or "a(b+c)" stays a product
  static constexpr std::string_view kNames = "fghpqrsuvwFGHPQRSTUVW";
  const Node& n = t.nodes[i];
  if (n.kind != K::kMul) return false;
  const Node& f = t.nodes[n.a];
  return f.kind == K::kVar && f.name.size() == 1 && kNames.find(f.name[0]) != kNames.npos;
}

bool is_label(const Tree& t, int i) {
  const Node& n = t.nodes[i];
  switch (n.kind) {
    case K::kVar:
      return true;
    case K::kMul:
      if (is_function_label(t, i)) return true;
      [[fallthrough]];
    case K::kAdd:
    case K::kSub:
    case K::kDiv:  // "AB", "V_1 : V_2", "\frac{NO}{BO}", "x + y": names only, no number
      return is_label(t, n.a) && is_label(t, n.b);
    case K::kNeg:
    case K::kAbs:
      return is_label(t, n.a);
    case K::kTuple:  // "(p, q)"
      for (int k : n.kids) {
        if (!is_label(t, k)) return false;
      }
      return !n.kids.empty();
    default:
      return false;
  }
}

// Whether a side is a congruence class ("x \equiv 3 \pmod 7" reads x = 3 \pmod 7): such
// equations compare side by side only, since "up to a factor" would drop the modulus.
static bool is_class(const Tree& t, int side) { return t.nodes[side].congruence; }

Cmp Comparer::equations(int a, int b) {
  if (o_.solve_equations) {
    if (Cmp solved = solutions(a, b); solved != Cmp::kInvalid) return solved;
  }
  const Node& x = ta_.nodes[a];
  const Node& y = tb_.nodes[b];
  if (x.kind == K::kEq && y.kind == K::kEq) {
    Cmp l = compare(x.a, y.a);
    if (l == Cmp::kEqual && compare(x.b, y.b) == Cmp::kEqual) return Cmp::kEqual;
    if (compare(x.a, y.b) == Cmp::kEqual && compare(x.b, y.a) == Cmp::kEqual) {
      return Cmp::kEqual;
    }
    if (is_class(ta_, x.a) || is_class(ta_, x.b) || is_class(tb_, y.a) || is_class(tb_, y.b)) {
      return l == Cmp::kInvalid ? Cmp::kInvalid : Cmp::kNotEqual;
    }
    // "x + y = 1" vs "y = 1 - x", "2x = 6" vs "x = 3": the same equation up to a factor
    double ratio = 0;
    if (proportional(x, y, ratio) == Cmp::kEqual) return Cmp::kEqual;
    // "f(x) = 2x + 3" vs "y = 2x + 3": two names of the same function's value
    bool fx = is_function_label(ta_, x.a), fy = is_function_label(tb_, y.a);
    auto is_y = [](const Tree& t, int i) {
      return t.nodes[i].kind == K::kVar && t.nodes[i].name == "y";
    };
    if ((fx && (fy || is_y(tb_, y.a))) || (fy && is_y(ta_, x.a))) return compare(x.b, y.b);
    return l == Cmp::kInvalid ? Cmp::kInvalid : Cmp::kNotEqual;
  }
  // "x = 3", "f(2) = 5" vs "3", "5": a label's value. A gold equation between two expressions
  // ("7 = 11a + c", "2x + z = 1") is no label, and its right side alone is not the answer; a
  // predicted one, and a gold chain of computation ("1 = a = x = 0"), are read by their last
  // side, as Math-Verify does.
  if (x.kind == K::kEq) {
    if (is_label(ta_, x.a)) return compare(x.b, b);
    if (is_label(ta_, x.b)) return compare(x.a, b);
    return a_is_pred_ || x.chain ? compare(x.b, b) : Cmp::kNotEqual;
  }
  if (is_label(tb_, y.a)) return compare(a, y.b);
  if (is_label(tb_, y.b)) return compare(a, y.a);
  return a_is_pred_ && !y.chain ? Cmp::kNotEqual : compare(a, y.b);
}

// Equation solving: a gold "x^2 = 4" against predicted solutions "x = \pm 2", "x = 2, x = -2",
// "\{-2, 2\}" or "-2, 2". Only the gold is solved: a prediction that restates an equation
// has not solved it, and GRPO would learn to copy the problem. kInvalid when the gold is not
// an equation to solve and the prediction a list of values (the other rules then apply).
Cmp Comparer::solutions(int a, int b) {
  std::vector<Value> roots, listed;
  std::string var;
  if (!a_is_pred_ && solve(ta_, a, roots, var)) {
    if (!answer_values(tb_, b, var, listed, 0)) return Cmp::kInvalid;
  } else if (a_is_pred_ && solve(tb_, b, roots, var)) {
    if (!answer_values(ta_, a, var, listed, 0)) return Cmp::kInvalid;
  } else {
    return Cmp::kInvalid;
  }
  dedupe(roots);
  dedupe(listed);
  if (roots.size() != listed.size()) return Cmp::kNotEqual;
  std::vector<bool> used(listed.size(), false);
  for (const Value& r : roots) {
    bool found = false;
    for (size_t j = 0; j < listed.size() && !found; ++j) {
      if (!used[j] && values_equal(r, listed[j]) == Cmp::kEqual) used[j] = found = true;
    }
    if (!found) return Cmp::kNotEqual;
  }
  return Cmp::kEqual;
}

void Comparer::dedupe(std::vector<Value>& vs) const {
  std::vector<Value> kept;
  for (const Value& v : vs) {
    bool seen = false;
    for (const Value& k : kept) seen = seen || values_equal(v, k) == Cmp::kEqual;
    if (!seen) kept.push_back(v);
  }
  vs.swap(kept);
}

bool Comparer::has_var(const Tree& t, int idx) {
  std::vector<std::string> vars;
  int n_pm = 0;
  collect_vars(t, idx, vars, n_pm);
  return !vars.empty();
}

// The real roots of an equation of degree 1 or 2 in one variable with rational coefficients
// (not already solved: "x = 3" is an answer, not a question). The coefficients come from
// exact values at three points; three more points confirm the degree (a rational function
// or a cubic fails them). Rational roots stay exact, surds are doubles.
bool Comparer::solve(const Tree& t, int idx, std::vector<Value>& roots, std::string& var) {
  const Node& n = t.nodes[idx];
  if (n.kind != K::kEq) return false;
  std::vector<std::string> vars;
  int n_pm = 0;
  collect_vars(t, idx, vars, n_pm);
  if (vars.size() != 1 || n_pm != 0) return false;
  // "x = 3" and "f(2) = 5" are answers (a label and its value), not equations in x or f
  if ((is_label(t, n.a) && !has_var(t, n.b)) || (is_label(t, n.b) && !has_var(t, n.a))) {
    return false;
  }
  const int64_t points[6][2] = {{0, 1}, {1, 1}, {-1, 1}, {2, 1}, {3, 1}, {1, 2}};
  Q f[6];
  for (int i = 0; i < 6; ++i) {
    Q at;
    q_make(points[i][0], points[i][1], at);
    std::vector<Binding> env{Binding{vars[0], Value::of_q(at)}};
    EvalCtx c{t, env, 0, budget_};
    auto l = eval(c, n.a), r = eval(c, n.b);
    if (!l || !r || !l->exact || !r->exact || !q_add(l->q, Q{-r->q.num, r->q.den}, f[i])) {
      return false;
    }
  }
  // f(t) = A t^2 + B t + C: C = f(0), B = (f(1) - f(-1)) / 2, A = (f(1) + f(-1)) / 2 - C
  Q half, A, B, C = f[0], s, d;
  q_make(1, 2, half);
  if (!q_add(f[1], Q{-f[2].num, f[2].den}, d) || !q_mul(d, half, B) || !q_add(f[1], f[2], s) ||
      !q_mul(s, half, s) || !q_add(s, Q{-C.num, C.den}, A)) {
    return false;
  }
  for (int i = 3; i < 6; ++i) {
    Q at, t2, term_a, term_b, sum;
    if (!q_make(points[i][0], points[i][1], at) || !q_mul(at, at, t2) || !q_mul(A, t2, term_a) ||
        !q_mul(B, at, term_b) || !q_add(term_a, term_b, sum) || !q_add(sum, C, sum) ||
        sum.num != f[i].num || sum.den != f[i].den) {
      return false;
    }
  }
  var = vars[0];
  if (A.num == 0) {  // linear; 0 = c has no single root
    Q root;
    if (B.num == 0 || !q_div(Q{-C.num, C.den}, B, root)) return false;
    roots.push_back(Value::of_q(root));
    return true;
  }
  Q b2, ac, disc, sq;
  Q four_a;
  if (!q_mul(B, B, b2) || !q_mul(A, C, ac) || !q_mul(ac, Q{4, 1}, ac) ||
      !q_add(b2, Q{-ac.num, ac.den}, disc) || !q_mul(A, Q{2, 1}, four_a)) {
    return false;
  }
  if (disc.num < 0) return false;  // complex roots: not judged here
  if (q_root(disc, 2, sq)) {
    for (int sign : {1, -1}) {
      Q top, root;
      if (!q_add(Q{-B.num, B.den}, Q{sign * sq.num, sq.den}, top) || !q_div(top, four_a, root)) {
        return false;
      }
      roots.push_back(Value::of_q(root));
    }
    return true;
  }
  const double root_disc = std::sqrt(disc.to_double());
  for (int sign : {1, -1}) {
    const double v = (-B.to_double() + sign * root_disc) / four_a.to_double();
    roots.push_back(Value{false, Q{}, v, false, false, 0.0, -1});
  }
  return true;
}

// The values an answer lists for `var`: "x = \pm 2", "x_1 = 2, x_2 = -2", "\{-2, 2\}", "2".
bool Comparer::answer_values(const Tree& t, int idx, const std::string& var,
                             std::vector<Value>& out, int depth) {
  const Node& n = t.nodes[idx];
  if (depth > 2 || out.size() > 8) return false;
  if (n.kind == K::kSet) {
    for (int k : n.kids) {
      if (!answer_values(t, k, var, out, depth + 1)) return false;
    }
    return !n.kids.empty();
  }
  if (n.kind == K::kEq) {
    auto names_var = [&](int side) {
      const Node& v = t.nodes[side];
      return v.kind == K::kVar && (v.name == var || v.name.rfind(var + "_", 0) == 0);
    };
    if (names_var(n.a) && !has_var(t, n.b)) return answer_values(t, n.b, var, out, depth + 1);
    if (names_var(n.b) && !has_var(t, n.a)) return answer_values(t, n.a, var, out, depth + 1);
    return false;
  }
  if (is_collection(n.kind) || n.kind == K::kRel || has_var(t, idx)) return false;
  int n_pm = 0;
  for (const Node& m : t.nodes) n_pm += m.kind == K::kPm;
  if (n_pm > 3) return false;
  std::vector<Binding> env;
  for (unsigned mask = 0; mask < (1u << n_pm); ++mask) {
    EvalCtx c{t, env, mask, budget_};
    auto v = eval(c, idx);
    if (!v || std::isnan(v->d) || v->infinity) return false;
    out.push_back(*v);
  }
  return true;
}

// Whether lhs - rhs of two equations are nonzero multiples of each other, by evaluation at
// the same random points as scalars().
Cmp Comparer::proportional(const Node& x, const Node& y, double& ratio) {
  std::vector<std::string> vars;
  int n_pm = 0;
  for (int side : {x.a, x.b}) collect_vars(ta_, side, vars, n_pm);
  for (int side : {y.a, y.b}) collect_vars(tb_, side, vars, n_pm);
  if (n_pm > 0 || vars.empty() || vars.size() > 12) return Cmp::kInvalid;
  Rng rng(0x5eed, vars.size() + 100);
  std::vector<Binding> env(vars.size());
  ratio = 0;
  int valid = 0;
  for (int p = 0; p < std::max(3, o_.n_points); ++p) {
    for (size_t i = 0; i < vars.size(); ++i) {
      Q q;
      q_make(static_cast<int64_t>(rng.below(23)) - 11, static_cast<int64_t>(rng.below(4)) + 1, q);
      env[i] = Binding{vars[i], Value::of_q(q)};
    }
    EvalCtx ca{ta_, env, 0, budget_};
    EvalCtx cb{tb_, env, 0, budget_};
    auto xa = eval(ca, x.a), xb = eval(ca, x.b), ya = eval(cb, y.a), yb = eval(cb, y.b);
    if (!xa || !xb || !ya || !yb) return Cmp::kInvalid;
    double dx = xa->d - xb->d, dy = ya->d - yb->d;
    if (!std::isfinite(dx) || !std::isfinite(dy)) continue;
    double scale = std::max({std::fabs(xa->d), std::fabs(xb->d), 1.0});
    bool zx = std::fabs(dx) <= 1e-9 * scale, zy = std::fabs(dy) <= 1e-9 * scale;
    if (zx != zy) return Cmp::kNotEqual;
    if (zx) continue;
    double r = dx / dy;
    if (valid > 0 && std::fabs(r - ratio) > o_.rel_tol * std::max(std::fabs(r), std::fabs(ratio))) {
      return Cmp::kNotEqual;
    }
    ratio = r;
    ++valid;
  }
  return valid >= 2 ? Cmp::kEqual : Cmp::kInvalid;
}

}  // namespace aha::rewards::detail
