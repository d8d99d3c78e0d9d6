// Math equivalence of inequalities: two relations (either way round) and a relation against
// the interval it describes ("x > 2" equals "(2, \infty)").
#include <string>
#include <vector>

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

Cmp Comparer::relations(int a, int b) {
  const Node& x = ta_.nodes[a];
  const Node& y = tb_.nodes[b];
  // Math-Verify's asymmetry: a gold inequality always accepts the interval it describes (the
  // more explicit answer); a gold interval accepts an inequality only with allow_set_relation.
  const Node& gold = a_is_pred_ ? y : x;
  if (x.kind != y.kind && gold.kind != K::kRel && !o_.allow_set_relation) return Cmp::kNotEqual;
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
  // "-x > -1" vs "x < 1", "2x <= 4" vs "x <= 2": lhs - rhs proportional, by a positive factor
  // for the same operator, a negative one for the flipped operator
  const Node& xl = ta_.nodes[x.a];
  const Node& yl = tb_.nodes[y.a];
  if (x.name == "!=" || xl.kind == K::kRel || yl.kind == K::kRel) return Cmp::kNotEqual;
  double ratio = 0;
  if (proportional(x, y, ratio) != Cmp::kEqual) return Cmp::kNotEqual;
  bool same = x.name == y.name, flipped = x.name == flip(y.name);
  return (same && ratio > 0) || (flipped && ratio < 0) ? Cmp::kEqual : Cmp::kNotEqual;
}

}  // namespace aha::rewards::detail
