// Math equivalence of inequalities: two relations (either way round), a relation against the
// interval it describes ("x > 2" equals "(2, \infty)"), and, when neither reads off directly, a
// one-variable relation against a union of intervals or another relation by the set of reals
// each describes ("1 \le |z| \le \frac32" equals "[-\frac32, -1] \cup [1, \frac32]").
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aha/core/rng.h"

#include "math_compare.h"

namespace aha::rewards::detail {

// "x < 3", "3 >= x", "1 < x <= 3", "0 < f(x) < 1" as interval ends on a label (is_label);
// false for other relations.
bool Comparer::rel_to_interval(const Tree& t, int idx, End& lo, End& hi) {
  const Node& n = t.nodes[idx];
  if (n.kind != K::kRel || n.name == "!=") return false;
  bool less = n.name == "<" || n.name == "<=";
  bool closed = n.name == "<=" || n.name == ">=";
  const Node& left = t.nodes[n.a];
  if (left.kind == K::kRel) {  // chain a < x < b
    End lo2, hi2;
    if (!rel_to_interval(t, n.a, lo2, hi2) || !is_label(t, left.b)) return false;
    (less ? hi : lo) = End{n.b, closed};
    (less ? lo : hi) = less ? lo2 : hi2;
    return (lo.node >= 0) && (hi.node >= 0);
  }
  if (is_label(t, n.a)) {  // x < c
    (less ? hi : lo) = End{n.b, closed};
    return true;
  }
  if (is_label(t, n.b)) {  // c < x
    (less ? lo : hi) = End{n.a, closed};
    return true;
  }
  return false;
}

// An inequality against an interval: "x > 2" vs "(2, \infty)".
Cmp Comparer::rel_vs_interval(const Tree& tr, int rel, const Tree& ti, int interval,
                              bool rel_in_a) {
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

namespace {

bool is_inequality(const Tree& t, int idx) {
  const Node& n = t.nodes[idx];
  if (n.kind != K::kRel) return false;
  const Node& left = t.nodes[n.a];
  if (n.name == "!=") return left.kind != K::kRel;  // "x \ne 2": all reals but one
  if (n.name != "<" && n.name != "<=" && n.name != ">" && n.name != ">=") return false;
  return left.kind != K::kRel || is_inequality(t, n.a);
}

// "x < -1 or x > 3": a bare list of inequalities, read as their disjunction.
bool is_disjunction(const Tree& t, int idx) {
  const Node& n = t.nodes[idx];
  if (n.kind != K::kSet || !n.bare || n.kids.size() < 2) return false;
  return std::all_of(n.kids.begin(), n.kids.end(), [&](int k) { return is_inequality(t, k); });
}

// Whether x satisfies the inequality (chain) at idx; nullopt where a side has no real value. A
// strict side must hold by more than the tolerance and a non-strict one may miss by it, so
// rounding at an end point (\sqrt2 computed twice) cannot move that end point in or out.
std::optional<bool> holds(const Tree& t, int idx, const std::string& var, double x, Budget& b) {
  const Node& n = t.nodes[idx];
  std::vector<Binding> env{Binding{var, Value::of_d(x)}};
  int left = n.a;
  if (t.nodes[n.a].kind == K::kRel) {
    auto inner = holds(t, n.a, var, x, b);
    if (!inner) return std::nullopt;
    if (!*inner) return false;
    left = t.nodes[n.a].b;
  }
  EvalCtx c{t, env, 0, b};
  auto l = eval(c, left), r = eval(c, n.b);
  if (!l || !r || std::isnan(l->d) || std::isnan(r->d)) return std::nullopt;
  double tol = 1e-9 * std::max({1.0, std::fabs(l->d), std::fabs(r->d)});
  if (n.name == "!=") return std::fabs(l->d - r->d) > tol;
  double d = n.name[0] == '<' ? r->d - l->d : l->d - r->d;  // > 0 when strictly satisfied
  return n.name.size() == 2 ? d >= -tol : d > tol;
}

// Where two descriptions of a set of reals can differ, given the numbers they mention: each
// mark, just below and above it, its negative, midpoints between marks, far out, random points.
std::vector<double> probe_points(std::vector<double> marks) {
  std::vector<double> points;
  std::sort(marks.begin(), marks.end());
  for (size_t i = 0; i < marks.size(); ++i) {
    double m = marks[i], eps = 1e-6 * std::max(1.0, std::fabs(m));
    for (double p : {m, m - eps, m + eps, -m}) points.push_back(p);
    if (i + 1 < marks.size()) points.push_back(0.5 * (m + marks[i + 1]));
  }
  double far = marks.empty() ? 10.0 : std::max(std::fabs(marks.front()), std::fabs(marks.back()));
  for (double p : {0.0, 2 * far + 1, -2 * far - 1, 1e6, -1e6}) points.push_back(p);
  Rng rng(0x5e7, marks.size());
  for (int k = 0; k < 16; ++k) points.push_back((static_cast<double>(rng.below(4001)) - 2000) / 97.0);
  return points;
}

}  // namespace

// The set of reals a one-variable inequality describes against a union of intervals (or the set
// another one-variable inequality describes), compared at the points where either can change:
// every end point, just inside and outside it, the midpoints between end points, the constants
// of the inequalities with their negatives, far out on both sides, and seeded random points.
Cmp Comparer::membership(const Tree& tr, int rel, const Tree& ts, int other) {
  std::vector<std::string> vars;
  int n_pm = 0;
  collect_vars(tr, rel, vars, n_pm);
  const Node& o = ts.nodes[other];
  const bool other_rel = o.kind == K::kRel || is_disjunction(ts, other);
  const std::vector<int> other_rels = o.kind == K::kRel ? std::vector<int>{other} : o.kids;
  if (other_rel) collect_vars(ts, other, vars, n_pm);
  if (vars.size() != 1 || n_pm > 0 || !is_inequality(tr, rel)) return Cmp::kNotEqual;
  if (o.kind == K::kRel && !is_inequality(ts, other)) return Cmp::kNotEqual;
  // the other side's pieces: [lo, hi] with closedness, or the other inequality itself
  struct Piece {
    double lo, hi;
    bool lo_closed, hi_closed;
  };
  std::vector<Piece> pieces;
  std::vector<double> marks;
  if (!other_rel) {
    std::vector<int> ivs = o.kind == K::kUnion ? o.kids : std::vector<int>{other};
    for (int iv : ivs) {
      const Node& n = ts.nodes[iv];
      // a pair in parentheses is the open interval here
      if ((n.kind != K::kInterval && n.kind != K::kTuple) || n.kids.size() != 2) {
        return Cmp::kNotEqual;
      }
      std::vector<Binding> env;
      EvalCtx c{ts, env, 0, budget_};
      auto lo = eval(c, n.kids[0]), hi = eval(c, n.kids[1]);
      if (!lo || !hi || std::isnan(lo->d) || std::isnan(hi->d)) return Cmp::kInvalid;
      bool interval = n.kind == K::kInterval;
      pieces.push_back({lo->d, hi->d, interval && n.lo_closed, interval && n.hi_closed});
      for (double e : {lo->d, hi->d}) {
        if (std::isfinite(e)) marks.push_back(e);
      }
    }
  }
  for (const Tree* t : {&tr, other_rel ? &ts : nullptr}) {
    if (t == nullptr) continue;
    for (const Node& n : t->nodes) {
      if (n.kind == K::kNum && marks.size() < 64) marks.push_back(n.exact ? n.q.to_double() : n.d);
    }
  }
  int compared = 0;
  for (double p : probe_points(marks)) {
    if (!budget_.ok()) return Cmp::kInvalid;
    auto in_rel = holds(tr, rel, vars[0], p, budget_);
    std::optional<bool> in_other;
    if (other_rel) {
      bool any = false, unknown = false;
      for (int k : other_rels) {
        auto h = holds(ts, k, vars[0], p, budget_);
        unknown = unknown || !h;
        any = any || (h && *h);
      }
      if (any || !unknown) in_other = any;
    } else {
      in_other = false;
      for (const Piece& q : pieces) {
        if ((p > q.lo || (q.lo_closed && p == q.lo)) && (p < q.hi || (q.hi_closed && p == q.hi))) {
          in_other = true;
        }
      }
    }
    if (!in_rel || !in_other) continue;  // outside a side's domain: no evidence either way
    if (*in_rel != *in_other) return Cmp::kNotEqual;
    ++compared;
  }
  return compared >= 8 ? Cmp::kEqual : Cmp::kInvalid;
}

// A relation against an interval, a union of them or an or-list of inequalities: the interval
// read off the relation where it can be, else the sets of reals the two describe (anything else
// is not equal).
Cmp Comparer::rel_vs_set(const Tree& tr, int rel, const Tree& ts, int set, bool rel_in_a) {
  const K k = ts.nodes[set].kind;
  if (k == K::kInterval || k == K::kTuple) {
    Cmp r = rel_vs_interval(tr, rel, ts, set, rel_in_a);
    if (r == Cmp::kEqual) return r;
  }
  return membership(tr, rel, ts, set);
}

Cmp Comparer::relations(int a, int b) {
  const Node& x = ta_.nodes[a];
  const Node& y = tb_.nodes[b];
  // Math-Verify's asymmetry: a gold inequality always accepts the interval it describes (the
  // more explicit answer); a gold interval accepts an inequality only with allow_set_relation.
  const bool x_rel = x.kind == K::kRel || is_disjunction(ta_, a);
  const bool y_rel = y.kind == K::kRel || is_disjunction(tb_, b);
  const bool gold_rel = a_is_pred_ ? y_rel : x_rel;
  if (x_rel != y_rel && !gold_rel && !o_.allow_set_relation) return Cmp::kNotEqual;
  if (x.kind == K::kRel && y.kind != K::kRel) return rel_vs_set(ta_, a, tb_, b, true);
  if (y.kind == K::kRel && x.kind != K::kRel) return rel_vs_set(tb_, b, ta_, a, false);
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
  // "-x > -1" vs "x < 1", "2x <= 4" vs "x <= 2": lhs - rhs proportional, by a positive factor
  // for the same operator, a negative one for the flipped operator
  const Node& xl = ta_.nodes[x.a];
  const Node& yl = tb_.nodes[y.a];
  if (x.name == "!=" || xl.kind == K::kRel || yl.kind == K::kRel) return membership(ta_, a, tb_, b);
  double ratio = 0;
  if (proportional(x, y, ratio) != Cmp::kEqual) return membership(ta_, a, tb_, b);
  bool same = x.name == y.name, flipped = x.name == flip(y.name);
  return (same && ratio > 0) || (flipped && ratio < 0) ? Cmp::kEqual : Cmp::kNotEqual;
}

}  // namespace aha::rewards::detail
