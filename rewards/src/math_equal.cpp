// Math equivalence: structural comparison of two parsed answers (tuples, intervals, sets,
// matrices, equations) down to scalars, which compare exactly as rationals where possible and
// otherwise numerically; expressions with variables are evaluated at seeded random points.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "aha/core/rng.h"
#include "math_internal.h"

namespace aha::rewards {
namespace detail {
namespace {

bool is_collection(K k) {
  return k == K::kTuple || k == K::kInterval || k == K::kSet || k == K::kUnion ||
         k == K::kMatrix;
}

enum class Cmp { kEqual, kNotEqual, kInvalid };

class Comparer {
 public:
  Comparer(const Tree& a, const Tree& b, const MathOptions& o, Budget& budget)
      : ta_(a), tb_(b), o_(o), budget_(budget) {}

  Cmp compare(int a, int b) {
    if (!budget_.step()) return Cmp::kInvalid;
    const Node& x = ta_.nodes[a];
    const Node& y = tb_.nodes[b];
    if (x.kind == K::kEq || y.kind == K::kEq) return equations(a, b);
    // a ratio "2:1" equals a ratio or a fraction, never a plain number
    if (x.ratio != y.ratio && (x.ratio ? y : x).kind != K::kDiv) return Cmp::kNotEqual;
    if (x.kind == K::kRel || y.kind == K::kRel) return relations(a, b);
    if (is_collection(x.kind) || is_collection(y.kind)) return collections(a, b);
    Cmp r = scalars(a, b);
    if (r == Cmp::kNotEqual && o_.percent_equiv) {
      // "50%" also matches "50"
      if (x.kind == K::kPercent) r = scalars_swapped(x.a, b);
      if (r != Cmp::kEqual && y.kind == K::kPercent) r = scalars(a, y.a);
    }
    return r;
  }

 private:
  Cmp swapped(int a, int b) {  // compare a node of tb_ against one of ta_
    Comparer other(tb_, ta_, o_, budget_);
    other.a_is_pred_ = !a_is_pred_;
    return other.compare(a, b);
  }
  Cmp scalars_swapped(int a_inner, int b) {
    Comparer same(ta_, tb_, o_, budget_);
    same.a_is_pred_ = a_is_pred_;
    return same.scalars(a_inner, b);
  }

  static bool is_var(const Tree& t, int i) { return t.nodes[i].kind == K::kVar; }

  Cmp equations(int a, int b) {
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
      // "x + y = 1" vs "y = 1 - x", "2x = 6" vs "x = 3": the same equation up to a factor
      if (proportional(x, y) == Cmp::kEqual) return Cmp::kEqual;
      return l == Cmp::kInvalid ? Cmp::kInvalid : Cmp::kNotEqual;
    }
    if (x.kind == K::kEq) {  // "x = 3" vs "3"
      if (is_var(ta_, x.a)) return compare(x.b, b);
      if (is_var(ta_, x.b)) return compare(x.a, b);
      return compare(x.b, b);
    }
    if (is_var(tb_, y.a)) return compare(a, y.b);
    if (is_var(tb_, y.b)) return compare(a, y.a);
    return compare(a, y.b);
  }

  // Equation solving: a gold "x^2 = 4" against predicted solutions "x = \pm 2", "x = 2, x = -2",
  // "\{-2, 2\}" or "-2, 2". Only the gold is solved: a prediction that restates an equation
  // has not solved it, and GRPO would learn to copy the problem. kInvalid when the gold is not
  // an equation to solve and the prediction a list of values (the other rules then apply).
  Cmp solutions(int a, int b) {
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

  void dedupe(std::vector<Value>& vs) const {
    std::vector<Value> kept;
    for (const Value& v : vs) {
      bool seen = false;
      for (const Value& k : kept) seen = seen || values_equal(v, k) == Cmp::kEqual;
      if (!seen) kept.push_back(v);
    }
    vs.swap(kept);
  }

  static bool has_var(const Tree& t, int idx) {
    std::vector<std::string> vars;
    int n_pm = 0;
    collect_vars(t, idx, vars, n_pm);
    return !vars.empty();
  }

  // The real roots of an equation of degree 1 or 2 in one variable with rational coefficients
  // (not already solved: "x = 3" is an answer, not a question). The coefficients come from
  // exact values at three points; three more points confirm the degree (a rational function
  // or a cubic fails them). Rational roots stay exact, surds are doubles.
  bool solve(const Tree& t, int idx, std::vector<Value>& roots, std::string& var) {
    const Node& n = t.nodes[idx];
    if (n.kind != K::kEq) return false;
    std::vector<std::string> vars;
    int n_pm = 0;
    collect_vars(t, idx, vars, n_pm);
    if (vars.size() != 1 || n_pm != 0) return false;
    if ((t.nodes[n.a].kind == K::kVar && !has_var(t, n.b)) ||
        (t.nodes[n.b].kind == K::kVar && !has_var(t, n.a))) {
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
    if (!q_add(f[1], Q{-f[2].num, f[2].den}, d) || !q_mul(d, half, B) ||
        !q_add(f[1], f[2], s) || !q_mul(s, half, s) || !q_add(s, Q{-C.num, C.den}, A)) {
      return false;
    }
    for (int i = 3; i < 6; ++i) {
      Q at, t2, term_a, term_b, sum;
      if (!q_make(points[i][0], points[i][1], at) || !q_mul(at, at, t2) ||
          !q_mul(A, t2, term_a) || !q_mul(B, at, term_b) || !q_add(term_a, term_b, sum) ||
          !q_add(sum, C, sum) || sum.num != f[i].num || sum.den != f[i].den) {
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
        if (!q_add(Q{-B.num, B.den}, Q{sign * sq.num, sq.den}, top) ||
            !q_div(top, four_a, root)) {
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
  bool answer_values(const Tree& t, int idx, const std::string& var, std::vector<Value>& out,
                     int depth) {
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
  Cmp proportional(const Node& x, const Node& y) {
    std::vector<std::string> vars;
    int n_pm = 0;
    for (int side : {x.a, x.b}) collect_vars(ta_, side, vars, n_pm);
    for (int side : {y.a, y.b}) collect_vars(tb_, side, vars, n_pm);
    if (n_pm > 0 || vars.empty() || vars.size() > 12) return Cmp::kInvalid;
    Rng rng(0x5eed, vars.size() + 100);
    std::vector<Binding> env(vars.size());
    double ratio = 0;
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

  // One end of an interval read off an inequality: a bound node (-1: infinite) and closedness.
  struct End {
    int node = -1;
    bool closed = false;
  };

  // "x < 3", "3 >= x", "1 < x <= 3" as interval ends on a variable; false for other relations.
  static bool rel_to_interval(const Tree& t, int idx, End& lo, End& hi) {
    const Node& n = t.nodes[idx];
    if (n.kind != K::kRel || n.name == "!=") return false;
    bool less = n.name == "<" || n.name == "<=";
    bool closed = n.name == "<=" || n.name == ">=";
    const Node& left = t.nodes[n.a];
    if (left.kind == K::kRel) {  // chain a < x < b
      End lo2, hi2;
      if (!rel_to_interval(t, n.a, lo2, hi2) || t.nodes[left.b].kind != K::kVar) return false;
      (less ? hi : lo) = End{n.b, closed};
      (less ? lo : hi) = less ? lo2 : hi2;
      return (lo.node >= 0) && (hi.node >= 0);
    }
    if (left.kind == K::kVar) {  // x < c
      (less ? hi : lo) = End{n.b, closed};
      return true;
    }
    if (t.nodes[n.b].kind == K::kVar) {  // c < x
      (less ? lo : hi) = End{n.a, closed};
      return true;
    }
    return false;
  }

  // An inequality against an interval: "x > 2" vs "(2, \infty)".
  Cmp rel_vs_interval(const Tree& tr, int rel, const Tree& ti, int interval, bool rel_in_a) {
    End lo, hi;
    const Node& iv = ti.nodes[interval];
    if (!rel_to_interval(tr, rel, lo, hi) || iv.kids.size() != 2) return Cmp::kNotEqual;
    bool lo_closed = iv.kind == K::kInterval && iv.lo_closed;
    bool hi_closed = iv.kind == K::kInterval && iv.hi_closed;
    const End ends[2] = {lo, hi};
    const bool closed[2] = {lo_closed, hi_closed};
    for (int k = 0; k < 2; ++k) {
      int bound = iv.kids[k];
      if (ends[k].node < 0) {  // must be -\infty / \infty
        std::vector<Binding> env;
        EvalCtx c{ti, env, 0, budget_};
        auto v = eval(c, bound);
        if (!v || !v->infinity || (v->d < 0) != (k == 0)) return Cmp::kNotEqual;
        continue;
      }
      if (ends[k].closed != closed[k]) return Cmp::kNotEqual;
      Cmp r = rel_in_a ? compare(ends[k].node, bound) : compare(bound, ends[k].node);
      if (r != Cmp::kEqual) return r;
    }
    return Cmp::kEqual;
  }

  Cmp relations(int a, int b) {
    const Node& x = ta_.nodes[a];
    const Node& y = tb_.nodes[b];
    if (x.kind != y.kind && !o_.allow_set_relation) return Cmp::kNotEqual;
    if (x.kind == K::kRel && (y.kind == K::kInterval || y.kind == K::kTuple)) {
      return rel_vs_interval(ta_, a, tb_, b, true);
    }
    if (y.kind == K::kRel && (x.kind == K::kInterval || x.kind == K::kTuple)) {
      return rel_vs_interval(tb_, b, ta_, a, false);
    }
    if (x.kind != K::kRel || y.kind != K::kRel) return Cmp::kNotEqual;
    auto flip = [](const std::string& op) -> std::string {
      if (op == "<") return ">";
      if (op == ">") return "<";
      if (op == "<=") return ">=";
      if (op == ">=") return "<=";
      return op;
    };
    if (x.name == y.name && compare(x.a, y.a) == Cmp::kEqual && compare(x.b, y.b) == Cmp::kEqual) {
      return Cmp::kEqual;
    }
    if (x.name == flip(y.name) && compare(x.a, y.b) == Cmp::kEqual &&
        compare(x.b, y.a) == Cmp::kEqual) {
      return Cmp::kEqual;
    }
    return Cmp::kNotEqual;
  }

  Cmp in_order(const std::vector<int>& xs, const std::vector<int>& ys) {
    if (xs.size() != ys.size()) return Cmp::kNotEqual;
    for (size_t i = 0; i < xs.size(); ++i) {
      Cmp r = compare(xs[i], ys[i]);
      if (r != Cmp::kEqual) return r;
    }
    return Cmp::kEqual;
  }

  // Order-insensitive: every element of xs matches a distinct element of ys (greedy).
  Cmp any_order(const std::vector<int>& xs, const std::vector<int>& ys) {
    if (xs.size() != ys.size()) return Cmp::kNotEqual;
    std::vector<bool> used(ys.size(), false);
    for (int x : xs) {
      bool found = false;
      for (size_t j = 0; j < ys.size() && !found; ++j) {
        if (used[j]) continue;
        Cmp r = compare(x, ys[j]);
        if (r == Cmp::kInvalid && !budget_.ok()) return Cmp::kInvalid;
        if (r == Cmp::kEqual) used[j] = found = true;
      }
      if (!found) return Cmp::kNotEqual;
    }
    return Cmp::kEqual;
  }

  // The elements of a braced set, or of a union of braced sets ("\{1\} \cup \{2\}").
  static bool set_elements(const Tree& t, int idx, std::vector<int>& out) {
    const Node& n = t.nodes[idx];
    if (n.kind == K::kSet && !n.bare) {
      out.insert(out.end(), n.kids.begin(), n.kids.end());
      return true;
    }
    if (n.kind != K::kUnion) return false;
    for (int k : n.kids) {
      if (!set_elements(t, k, out)) return false;
    }
    return true;
  }

  Cmp collections(int a, int b) {
    const Node& x = ta_.nodes[a];
    const Node& y = tb_.nodes[b];
    std::vector<int> xs, ys;
    if ((x.kind == K::kUnion || y.kind == K::kUnion) && set_elements(ta_, a, xs) &&
        set_elements(tb_, b, ys)) {
      return any_order(xs, ys);
    }
    // a one-element set equals its element; a scalar with \pm equals the set of its values
    if (!is_collection(y.kind)) {
      if (x.kind == K::kSet && x.kids.size() == 1) return compare(x.kids[0], b);
      if (x.kind == K::kSet) return pm_set(b, a, /*scalar_in_a=*/false);
      return Cmp::kNotEqual;
    }
    if (!is_collection(x.kind)) {
      if (y.kind == K::kSet && y.kids.size() == 1) return compare(a, y.kids[0]);
      if (y.kind == K::kSet) return pm_set(a, b, /*scalar_in_a=*/true);
      return Cmp::kNotEqual;
    }
    if (x.kind == K::kMatrix || y.kind == K::kMatrix) {
      if (x.kind == K::kMatrix && y.kind == K::kMatrix) {
        if (x.rows != y.rows || x.cols != y.cols) return Cmp::kNotEqual;
        return in_order(x.kids, y.kids);
      }
      // a row or column vector equals a tuple (or bare list) of the same entries
      const Node& m = x.kind == K::kMatrix ? x : y;
      const Node& other = x.kind == K::kMatrix ? y : x;
      bool tuple_like = other.kind == K::kTuple || (other.kind == K::kSet && other.bare);
      if (!tuple_like || (m.rows != 1 && m.cols != 1)) return Cmp::kNotEqual;
      return in_order(x.kids, y.kids);
    }
    if (x.kind == K::kInterval || y.kind == K::kInterval) {
      if (x.kind != y.kind || x.lo_closed != y.lo_closed || x.hi_closed != y.hi_closed) {
        return Cmp::kNotEqual;
      }
      return in_order(x.kids, y.kids);
    }
    if (x.kind == K::kTuple && y.kind == K::kTuple) return in_order(x.kids, y.kids);
    if ((x.kind == K::kSet && y.kind == K::kSet) || (x.kind == K::kUnion && y.kind == K::kUnion)) {
      return any_order(x.kids, y.kids);
    }
    // a bare list "1, 2" against a tuple "(1, 2)": in order; a braced set never equals a tuple
    if ((x.kind == K::kSet && x.bare && y.kind == K::kTuple) ||
        (x.kind == K::kTuple && y.kind == K::kSet && y.bare)) {
      return in_order(x.kids, y.kids);
    }
    return Cmp::kNotEqual;
  }

  // A scalar with \pm (in `scalar`) against a set of values.
  Cmp pm_set(int scalar, int set, bool scalar_in_a) {
    const Tree& ts = scalar_in_a ? ta_ : tb_;
    const Tree& tset = scalar_in_a ? tb_ : ta_;
    std::vector<std::string> vars;
    int n_pm = 0;
    collect_vars(ts, scalar, vars, n_pm);
    const auto& kids = tset.nodes[set].kids;
    if (n_pm == 0 || n_pm > 3 || kids.size() != (1u << n_pm) || !vars.empty()) {
      return Cmp::kNotEqual;
    }
    std::vector<Value> values;
    std::vector<Binding> env;
    for (unsigned mask = 0; mask < (1u << n_pm); ++mask) {
      EvalCtx c{ts, env, mask, budget_};
      auto v = eval(c, scalar);
      if (!v) return Cmp::kInvalid;
      values.push_back(*v);
    }
    std::vector<bool> used(values.size(), false);
    for (int k : kids) {
      EvalCtx c{tset, env, 0, budget_};
      auto v = eval(c, k);
      if (!v) return Cmp::kNotEqual;
      bool found = false;
      for (size_t i = 0; i < values.size() && !found; ++i) {
        if (!used[i] && values_equal(values[i], *v) == Cmp::kEqual) used[i] = found = true;
      }
      if (!found) return Cmp::kNotEqual;
    }
    return Cmp::kEqual;
  }

  Cmp values_equal(const Value& x, const Value& y) const {
    if (x.exact && y.exact && x.q.num == y.q.num && x.q.den == y.q.den) return Cmp::kEqual;
    if (x.exact && y.exact && !x.approx && !y.approx) return Cmp::kNotEqual;
    if (std::isnan(x.d) || std::isnan(y.d)) return Cmp::kInvalid;
    if (std::isinf(x.d) || std::isinf(y.d)) {
      // only the symbol \infty is comparable; an overflow (10^{400}) is unparsable
      if ((std::isinf(x.d) && !x.infinity) || (std::isinf(y.d) && !y.infinity)) {
        return Cmp::kInvalid;
      }
      if (x.infinity && y.infinity) return (x.d > 0) == (y.d > 0) ? Cmp::kEqual : Cmp::kNotEqual;
      return Cmp::kNotEqual;  // \infty against a finite value
    }
    double diff = std::fabs(x.d - y.d);
    double scale = std::max(std::fabs(x.d), std::fabs(y.d));
    double tol = std::max(o_.rel_tol * scale, o_.abs_tol);
    // a decimal meets another value: equal when they agree to `precision` decimals, or to
    // the decimals the decimal shows when it shows at least three ("1.414" = \sqrt2)
    if (x.approx || y.approx) tol = std::max(tol, 0.5 * std::pow(10.0, -o_.precision));
    double unc = x.unc > 0 && y.unc > 0 ? std::min(x.unc, y.unc) : std::max(x.unc, y.unc);
    int decimals = x.decimals >= 0 && y.decimals >= 0 ? std::min(x.decimals, y.decimals)
                                                      : std::max(x.decimals, y.decimals);
    if (decimals >= 3) tol = std::max(tol, unc);
    return diff <= tol * (1 + 1e-9) ? Cmp::kEqual : Cmp::kNotEqual;
  }

  Cmp scalars(int a, int b);
  Cmp real_scalars(int a, int b);
  Cmp complex_scalars(int a, int b);

  const Tree& ta_;
  bool a_is_pred_ = true;  // ta_ is the prediction (false inside swapped())
  const Tree& tb_;
  const MathOptions& o_;
  Budget& budget_;
};

Cmp Comparer::scalars(int a, int b) {
  Cmp r = real_scalars(a, b);
  if (r == Cmp::kEqual || !budget_.ok()) return r;
  if (!uses_imaginary_unit(ta_, a) && !uses_imaginary_unit(tb_, b)) return r;
  Cmp c = complex_scalars(a, b);
  return c == Cmp::kInvalid ? r : c;
}

// Fewest decimals (3 or more) among the decimal literals of a subtree; -1 when none.
int shown_decimals(const Tree& t, int idx) {
  const Node& n = t.nodes[idx];
  int d = n.kind == K::kNum && n.decimals >= 3 ? n.decimals : -1;
  for (int k : {n.a, n.b}) {
    if (k < 0) continue;
    int dk = shown_decimals(t, k);
    if (dk >= 0) d = d < 0 ? dk : std::min(d, dk);
  }
  return d;
}

Cmp Comparer::complex_scalars(int a, int b) {
  std::vector<std::string> vars;
  int n_pm = 0;
  collect_vars(ta_, a, vars, n_pm);
  collect_vars(tb_, b, vars, n_pm);
  vars.erase(std::remove(vars.begin(), vars.end(), "i"), vars.end());
  if (n_pm > 0 || vars.size() > 12) return Cmp::kInvalid;
  int da = shown_decimals(ta_, a), db = shown_decimals(tb_, b);
  int decimals = da < 0 ? db : db < 0 ? da : std::min(da, db);
  Rng rng(0xc0, vars.size());
  std::vector<Binding> env(vars.size());
  int valid = 0;
  int n_points = vars.empty() ? 1 : std::max(2, o_.n_points);
  for (int p = 0; p < n_points; ++p) {
    for (size_t i = 0; i < vars.size(); ++i) {
      double v = (static_cast<double>(rng.below(2000)) - 1000) / 300.0 + 0.01 * (i + 1);
      env[i] = Binding{vars[i], Value::of_d(v)};
    }
    auto x = eval_complex(ta_, a, env, budget_);
    auto y = eval_complex(tb_, b, env, budget_);
    if (!x || !y) return Cmp::kInvalid;
    if (!std::isfinite(std::abs(*x)) || !std::isfinite(std::abs(*y))) continue;
    double scale = std::max(std::abs(*x), std::abs(*y));
    double tol = std::max({o_.rel_tol * scale, o_.abs_tol, 0.5 * std::pow(10.0, -o_.precision)});
    if (decimals >= 3) tol = std::max(tol, 0.5 * std::pow(10.0, -decimals) * (1 + scale));
    if (std::abs(*x - *y) > tol) return Cmp::kNotEqual;
    ++valid;
  }
  return valid >= (vars.empty() ? 1 : 2) ? Cmp::kEqual : Cmp::kInvalid;
}

Cmp Comparer::real_scalars(int a, int b) {
  std::vector<std::string> vars;
  int pm_a = 0, pm_b = 0;
  collect_vars(ta_, a, vars, pm_a);
  collect_vars(tb_, b, vars, pm_b);
  if (pm_a != pm_b || pm_a > 3) return pm_a > 3 ? Cmp::kInvalid : Cmp::kNotEqual;
  if (vars.size() > 12) return Cmp::kInvalid;
  int n_points = vars.empty() ? 1 : std::max(2, o_.n_points);
  Rng rng(0x5eed, vars.size());
  std::vector<Binding> env(vars.size());
  int valid = 0;
  for (int p = 0; p < n_points; ++p) {
    for (size_t i = 0; i < vars.size(); ++i) {
      // small rationals, both signs, never zero: exact arithmetic stays exact
      int64_t num = static_cast<int64_t>(rng.below(17)) + 1;
      int64_t den = static_cast<int64_t>(rng.below(5)) + 1;
      if (p % 3 == 2) num = -num;
      Q q;
      q_make(num * 7 + static_cast<int64_t>(i), den * 3 + 1, q);
      env[i] = Binding{vars[i], Value::of_q(q)};
    }
    for (unsigned mask = 0; mask < (1u << pm_a); ++mask) {
      EvalCtx ca{ta_, env, mask, budget_};
      EvalCtx cb{tb_, env, mask, budget_};
      auto x = eval(ca, a);
      auto y = eval(cb, b);
      if (!x || !y) return Cmp::kInvalid;
      Cmp r = values_equal(*x, *y);
      if (r == Cmp::kNotEqual) return r;
      if (r == Cmp::kInvalid) {
        // outside one side's domain (sqrt, log of a negative): this point says nothing
        if (vars.empty() && std::isnan(x->d) != std::isnan(y->d)) return Cmp::kNotEqual;
        continue;
      }
      ++valid;
    }
  }
  return valid >= (vars.empty() ? 1 : 2) ? Cmp::kEqual : Cmp::kInvalid;
}

}  // namespace

MathVerdict compare_trees(const Tree& pred, const Tree& gold, const MathOptions& options,
                          Budget& budget) {
  Comparer comparer(pred, gold, options, budget);
  Cmp r = comparer.compare(pred.root, gold.root);
  if (!budget.ok()) return MathVerdict::kUnparsable;
  switch (r) {
    case Cmp::kEqual: return MathVerdict::kEqual;
    case Cmp::kNotEqual: return MathVerdict::kNotEqual;
    default: return MathVerdict::kUnparsable;
  }
}

}  // namespace detail
}  // namespace aha::rewards
