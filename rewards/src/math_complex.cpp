// Complex evaluation of parsed answers, for answers written with the imaginary unit i
// ("(1 + i)^2" vs "2i", "\sqrt{-4}" vs "2i"): doubles only, at the same points as the real
// evaluation, with `i` bound to the imaginary unit.
#include <cmath>

#include "math_internal.h"

namespace aha::rewards::detail {
namespace {

using C = std::complex<double>;

std::optional<C> func(const std::string& f, C x) {
  if (f == "sin") return std::sin(x);
  if (f == "cos") return std::cos(x);
  if (f == "tan") return std::tan(x);
  if (f == "exp") return std::exp(x);
  if (f == "ln") return std::log(x);
  if (f == "sinh") return std::sinh(x);
  if (f == "cosh") return std::cosh(x);
  return std::nullopt;
}

std::optional<C> power(C base, C exponent) {
  // exact small integer powers keep i^2 = -1 exactly
  if (exponent.imag() == 0 && exponent.real() == std::round(exponent.real()) &&
      std::fabs(exponent.real()) <= 64) {
    int n = static_cast<int>(exponent.real());
    C r = 1;
    for (int k = 0; k < std::abs(n); ++k) r *= base;
    return n < 0 ? C(1) / r : r;
  }
  if (base == C(0)) return std::nullopt;
  if (base.imag() == 0) base = C(base.real(), 0.0);  // -0: the principal root, not its conjugate
  return std::pow(base, exponent);
}

}  // namespace

std::optional<C> eval_complex(const Tree& t, int idx, const std::vector<Binding>& env,
                              Budget& budget) {
  if (!budget.step()) return std::nullopt;
  const Node& n = t.nodes[idx];
  switch (n.kind) {
    case K::kNum: {
      double v = n.exact ? n.q.to_double() : n.d;
      return C(n.percent ? v / 100 : v);
    }
    case K::kVar:
      if (n.name == "i") return C(0, 1);
      for (const auto& b : env) {
        if (b.name == n.name) return C(b.value.d);
      }
      return std::nullopt;
    case K::kPi: return C(3.14159265358979323846);
    case K::kE: return C(2.71828182845904523536);
    case K::kNeg: case K::kPercent: case K::kAbs: {
      auto x = eval_complex(t, n.a, env, budget);
      if (!x) return std::nullopt;
      if (n.kind == K::kNeg) return -*x;
      if (n.kind == K::kPercent) return *x / 100.0;
      return C(std::abs(*x));
    }
    case K::kAdd: case K::kSub: case K::kMul: case K::kDiv: case K::kPow: case K::kPm: {
      auto x = eval_complex(t, n.a, env, budget);
      auto y = x ? eval_complex(t, n.b, env, budget) : std::nullopt;
      if (!y) return std::nullopt;
      switch (n.kind) {
        case K::kAdd: case K::kPm: return *x + *y;
        case K::kSub: return *x - *y;
        case K::kMul: return *x * *y;
        case K::kDiv: return *y == C(0) ? std::nullopt : std::optional<C>(*x / *y);
        default: return power(*x, *y);
      }
    }
    case K::kFunc: {
      if (n.b >= 0) return std::nullopt;
      auto x = eval_complex(t, n.a, env, budget);
      return x ? func(n.name, *x) : std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

bool uses_imaginary_unit(const Tree& t, int idx) {
  std::vector<std::string> vars;
  int n_pm = 0;
  collect_vars(t, idx, vars, n_pm);
  for (const auto& v : vars) {
    if (v == "i") return true;
  }
  return false;
}

}  // namespace aha::rewards::detail
