// Math equivalence of scalars: exact rationals, decimals within the precision they show, and
// expressions with variables (real, or complex with i) evaluated at seeded random points.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "aha/core/rng.h"
#include "math_compare.h"

namespace aha::rewards::detail {

Cmp Comparer::values_equal(const Value& x, const Value& y) const {
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
  if (diff <= tol * (1 + 1e-9)) return Cmp::kEqual;
  // a decimal cut off rather than rounded against a value not written as one (125.663 for 40\pi
  // = 125.6637..., as MARIO accepts): it lies within one unit of its last place towards zero
  if (decimals >= 3 && (x.decimals < 0) != (y.decimals < 0)) {
    const Value& cut = x.decimals >= 0 ? x : y;
    const Value& full = x.decimals >= 0 ? y : x;
    if ((cut.d >= 0) == (full.d >= 0) && std::fabs(cut.d) <= std::fabs(full.d) &&
        diff < 2 * unc * (1 - 1e-9)) {
      return Cmp::kEqual;
    }
  }
  return Cmp::kNotEqual;
}

Cmp Comparer::scalars(int a, int b) {
  Cmp r = real_scalars(a, b);
  if (r == Cmp::kEqual || !budget_.ok()) return r;
  if (!uses_imaginary_unit(ta_, a) && !uses_imaginary_unit(tb_, b)) return r;
  Cmp c = complex_scalars(a, b);
  return c == Cmp::kInvalid ? r : c;
}

namespace {

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

}  // namespace

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
  // the bounds of a sum or product must be integers: sample 1..24 there
  const bool integers = has_index_range(ta_, a) || has_index_range(tb_, b);
  for (int p = 0; p < n_points; ++p) {
    for (size_t i = 0; i < vars.size(); ++i) {
      // small rationals, both signs, never zero: exact arithmetic stays exact
      int64_t num = static_cast<int64_t>(rng.below(17)) + 1;
      int64_t den = static_cast<int64_t>(rng.below(5)) + 1;
      if (p % 3 == 2) num = -num;
      Q q;
      if (integers) {
        q = Q{static_cast<i128>(rng.below(24)) + 1, 1};
      } else {
        q_make(num * 7 + static_cast<int64_t>(i), den * 3 + 1, q);
      }
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

}  // namespace aha::rewards::detail
