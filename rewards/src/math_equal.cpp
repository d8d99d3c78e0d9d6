// Math equivalence: structural comparison of two parsed answers (tuples, intervals, sets,
// matrices, equations) down to scalars, which compare exactly as rationals where possible and
// otherwise numerically; expressions with variables are evaluated at seeded random points.

#include <cmath>

#include "math_compare.h"

namespace aha::rewards::detail {

bool is_collection(K k) {
  return k == K::kTuple || k == K::kInterval || k == K::kSet || k == K::kUnion || k == K::kMatrix;
}

Cmp Comparer::compare(int a, int b) {
  if (!budget_.step()) return Cmp::kInvalid;
  const Node& x = ta_.nodes[a];
  const Node& y = tb_.nodes[b];
  if (x.kind == K::kEq || y.kind == K::kEq) return equations(a, b);
  // a ratio "2:1" equals a ratio or a fraction, never a plain number
  if (x.ratio != y.ratio && (x.ratio ? y : x).kind != K::kDiv) return Cmp::kNotEqual;
  if (x.kind == K::kRel || y.kind == K::kRel) return relations(a, b);
  if (is_collection(x.kind) || is_collection(y.kind)) return collections(a, b);
  if (x.congruence && y.congruence) {  // two classes: the same modulus, then the same residue
    Cmp m = compare(x.b, y.b);
    if (m != Cmp::kEqual) return m;
  }
  Cmp r = scalars(a, b);
  if (r == Cmp::kNotEqual && o_.percent_equiv) {
    // "50%" also matches "50"
    if (x.kind == K::kPercent) r = scalars_swapped(x.a, b);
    if (r != Cmp::kEqual && y.kind == K::kPercent) r = scalars(a, y.a);
  }
  return r;
}

Cmp Comparer::swapped(int a, int b) {  // compare a node of tb_ against one of ta_
  Comparer other(tb_, ta_, o_, budget_);
  other.a_is_pred_ = !a_is_pred_;
  return other.compare(a, b);
}

Cmp Comparer::scalars_swapped(int a_inner, int b) {
  Comparer same(ta_, tb_, o_, budget_);
  same.a_is_pred_ = a_is_pred_;
  return same.scalars(a_inner, b);
}

Cmp Comparer::in_order(const std::vector<int>& xs, const std::vector<int>& ys) {
  if (xs.size() != ys.size()) return Cmp::kNotEqual;
  for (size_t i = 0; i < xs.size(); ++i) {
    Cmp r = compare(xs[i], ys[i]);
    if (r != Cmp::kEqual) return r;
  }
  return Cmp::kEqual;
}

// Order-insensitive. When the gold names no element twice, the answer is the set of its
// elements, as Math-Verify's sets: "(1,2), (3,4), (1,2)" equals "(3,4), (1,2)". When it repeats
// one ("1, 1, 2"), multiplicities count: "1, 2, 2" does not equal it.
Cmp Comparer::any_order(const std::vector<int>& xs, const std::vector<int>& ys) {
  if (xs.size() == ys.size()) {
    Cmp r = each_matched(xs, ys, true, true);
    if (r != Cmp::kNotEqual) return r;
  }
  const Tree& gold_tree = a_is_pred_ ? tb_ : ta_;
  const std::vector<int>& gold = a_is_pred_ ? ys : xs;
  Comparer within(gold_tree, gold_tree, o_, budget_);
  for (size_t i = 0; i < gold.size(); ++i) {
    for (size_t j = i + 1; j < gold.size(); ++j) {
      Cmp r = within.compare(gold[i], gold[j]);
      if (r == Cmp::kEqual || (r == Cmp::kInvalid && !budget_.ok())) return Cmp::kNotEqual;
    }
  }
  Cmp r = each_matched(xs, ys, true, false);
  return r == Cmp::kEqual ? each_matched(ys, xs, false, false) : r;
}

// Whether a bare gold list meeting a list is compared in order (MathOptions::list_order).
bool Comparer::gold_order_matters(int a, int b) {
  const Tree& t = a_is_pred_ ? tb_ : ta_;
  const Node& gold = t.nodes[a_is_pred_ ? b : a];
  if (gold.kind != K::kSet || !gold.bare) return false;
  if (o_.list_order != MathOptions::ListOrder::kAuto) {
    return o_.list_order == MathOptions::ListOrder::kAsWritten;
  }
  if (gold.kids.size() < 3) return false;
  std::vector<Binding> env;
  bool ascending = true, descending = true;
  double last = 0;
  for (size_t i = 0; i < gold.kids.size(); ++i) {
    EvalCtx c{t, env, 0, budget_};
    auto v = eval(c, gold.kids[i]);
    if (!v || !std::isfinite(v->d)) return false;  // not a list of real numbers
    if (i > 0) {
      ascending = ascending && v->d >= last;
      descending = descending && v->d <= last;
    }
    last = v->d;
  }
  return !ascending && !descending;
}

// Every element of `from` equals an element of `to` (a distinct one when `distinct`, greedily);
// from_a: `from` holds nodes of ta_.
Cmp Comparer::each_matched(const std::vector<int>& from, const std::vector<int>& to, bool from_a,
                           bool distinct) {
  std::vector<bool> used(to.size(), false);
  for (int f : from) {
    bool found = false;
    for (size_t j = 0; j < to.size() && !found; ++j) {
      if (used[j]) continue;
      Cmp r = from_a ? compare(f, to[j]) : compare(to[j], f);
      if (r == Cmp::kInvalid && !budget_.ok()) return Cmp::kInvalid;
      if (r == Cmp::kEqual) {
        found = true;
        used[j] = distinct;
      }
    }
    if (!found) return Cmp::kNotEqual;
  }
  return Cmp::kEqual;
}

// The elements of a braced set, or of a union of braced sets ("\{1\} \cup \{2\}").
bool Comparer::set_elements(const Tree& t, int idx, std::vector<int>& out) {
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

Cmp Comparer::collections(int a, int b) {
  const Node& x = ta_.nodes[a];
  const Node& y = tb_.nodes[b];
  std::vector<int> xs, ys;
  if ((x.kind == K::kUnion || y.kind == K::kUnion) && set_elements(ta_, a, xs) &&
      set_elements(tb_, b, ys)) {
    return any_order(xs, ys);
  }
  // "x < -1 or x > 2" against "(-\infty, -1) \cup (2, \infty)": relation by interval
  auto relations_list = [](const Tree& t, const Node& n) {
    if (n.kind != K::kSet || !n.bare) return false;
    for (int k : n.kids) {
      if (t.nodes[k].kind != K::kRel) return false;
    }
    return true;
  };
  if ((x.kind == K::kUnion && relations_list(tb_, y)) ||
      (y.kind == K::kUnion && relations_list(ta_, x))) {
    return any_order(x.kids, y.kids);
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
    // a row or column vector equals a tuple (or bare list) of the same entries, and a list in
    // brackets, which reads as a closed interval when it has two (`[0.5, 1]`, as MARIO's lists)
    const Node& m = x.kind == K::kMatrix ? x : y;
    const Node& other = x.kind == K::kMatrix ? y : x;
    bool tuple_like = other.kind == K::kTuple || (other.kind == K::kSet && other.bare) ||
                      (other.kind == K::kInterval && other.lo_closed && other.hi_closed);
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
    if (x.kind == K::kSet && gold_order_matters(a, b)) return in_order(x.kids, y.kids);
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
Cmp Comparer::pm_set(int scalar, int set, bool scalar_in_a) {
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

MathVerdict compare_trees(const Tree& pred, const Tree& gold, const MathOptions& options,
                          Budget& budget) {
  Comparer comparer(pred, gold, options, budget);
  Cmp r = comparer.compare(pred.root, gold.root);
  if (!budget.ok()) return MathVerdict::kUnparsable;
  switch (r) {
    case Cmp::kEqual:
      return MathVerdict::kEqual;
    case Cmp::kNotEqual:
      return MathVerdict::kNotEqual;
    default:
      return MathVerdict::kUnparsable;
  }
}

}  // namespace aha::rewards::detail
