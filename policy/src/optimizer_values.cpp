// Compiled with -ffp-contract=off -fno-math-errno: the multiply-adds that the compiler used to
// contract in the scalar loops are written as fma here, so the vectorised loops give the same
// bits as before, on FMA CPUs and (plain multiply and add) on others.
#include "optimizer_values.h"

#include <cmath>

namespace aha::policy::detail {

namespace {

template <typename T>
inline T madd(T a, T b, T c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

}  // namespace

template <typename T>
void adamw_values(T* p, const T* g, T* m, T* v, size_t n, T b1, T b2, T step, T decay,
                  T inv_sqrt_bc2, T eps) {
  const T c1 = 1 - b1, c2 = 1 - b2;
  for (size_t i = 0; i < n; ++i) {
    m[i] = madd(b1, m[i], c1 * g[i]);
    v[i] = madd(b2, v[i], c2 * g[i] * g[i]);
    p[i] = p[i] * decay - step * m[i] / madd(std::sqrt(v[i]), inv_sqrt_bc2, eps);
  }
}

template <typename T>
void sgd_values(T* p, const T* g, size_t n, double lr, double wd) {
  for (size_t i = 0; i < n; ++i) p[i] -= static_cast<T>(lr * madd(wd, double(p[i]), double(g[i])));
}

template void adamw_values<float>(float*, const float*, float*, float*, size_t, float, float,
                                  float, float, float, float);
template void adamw_values<double>(double*, const double*, double*, double*, size_t, double,
                                   double, double, double, double, double);
template void sgd_values<float>(float*, const float*, size_t, double, double);
template void sgd_values<double>(double*, const double*, size_t, double, double);

}  // namespace aha::policy::detail
