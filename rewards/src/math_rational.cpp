// Exact rational arithmetic on __int128 with overflow detection: the exact half of the math
// checker's number model (the other half is double with tolerance).
#include <cmath>

#include "math_internal.h"

namespace aha::rewards::detail {
namespace {

i128 iabs(i128 v) { return v < 0 ? -v : v; }

i128 gcd(i128 a, i128 b) {
  a = iabs(a);
  b = iabs(b);
  while (b != 0) {
    i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Limits keep products of two values inside __int128.
constexpr i128 kLimit = (static_cast<i128>(1) << 120);

}  // namespace

bool q_make(i128 num, i128 den, Q& out) {
  if (den == 0) return false;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  i128 g = gcd(num, den);
  if (g > 1) {
    num /= g;
    den /= g;
  }
  if (iabs(num) > kLimit || den > kLimit) return false;
  out.num = num;
  out.den = den;
  return true;
}

bool q_add(const Q& a, const Q& b, Q& out) {
  i128 x, y, d;
  if (__builtin_mul_overflow(a.num, b.den, &x) || __builtin_mul_overflow(b.num, a.den, &y) ||
      __builtin_mul_overflow(a.den, b.den, &d) || __builtin_add_overflow(x, y, &x)) {
    return false;
  }
  return q_make(x, d, out);
}

bool q_mul(const Q& a, const Q& b, Q& out) {
  i128 n, d;
  if (__builtin_mul_overflow(a.num, b.num, &n) || __builtin_mul_overflow(a.den, b.den, &d)) {
    return false;
  }
  return q_make(n, d, out);
}

bool q_div(const Q& a, const Q& b, Q& out) {
  if (b.num == 0) return false;
  return q_mul(a, Q{b.den, b.num}, out) || false;
}

bool q_pow(const Q& a, int64_t k, Q& out) {
  if (k < 0) {
    if (a.num == 0) return false;
    Q inv;
    if (!q_make(a.den, a.num, inv)) return false;
    return q_pow(inv, -k, out);
  }
  if (k > 256) return a.num == 0 || (a.num == a.den) ? q_make(a.num, a.den, out) : false;
  Q result{1, 1};
  Q base = a;
  while (k > 0) {
    if (k & 1) {
      if (!q_mul(result, base, result)) return false;
    }
    k >>= 1;
    if (k > 0 && !q_mul(base, base, base)) return false;
  }
  out = result;
  return true;
}

namespace {
// The exact integer n-th root of v >= 0, or -1.
i128 int_root(i128 v, int64_t n) {
  if (v < 0) return -1;
  if (v < 2) return v;
  double guess = std::round(std::pow(static_cast<double>(v), 1.0 / static_cast<double>(n)));
  for (i128 r = static_cast<i128>(guess) - 1; r <= static_cast<i128>(guess) + 1; ++r) {
    if (r < 0) continue;
    Q p;
    if (q_pow(Q{r, 1}, n, p) && p.num == v) return r;
  }
  return -1;
}
}  // namespace

bool q_root(const Q& a, int64_t n, Q& out) {
  if (n <= 0 || n > 64) return false;
  bool negative = a.num < 0;
  if (negative && n % 2 == 0) return false;
  i128 rn = int_root(iabs(a.num), n);
  i128 rd = int_root(a.den, n);
  if (rn < 0 || rd < 0) return false;
  return q_make(negative ? -rn : rn, rd, out);
}

}  // namespace aha::rewards::detail
