// The optimizer's per-value updates, compiled apart (policy/CMakeLists.txt) so that they
// vectorise and round exactly as the plain scalar loops did.
#pragma once

#include <cstddef>

namespace aha::policy::detail {

// AdamW over n values: step = lr / bc1, decay = 1 - lr * wd, inv_sqrt_bc2 = 1 / sqrt(bc2).
template <typename T>
void adamw_values(T* p, const T* g, T* m, T* v, size_t n, T b1, T b2, T step, T decay,
                  T inv_sqrt_bc2, T eps);
// SGD with decoupled weight decay over n values.
template <typename T>
void sgd_values(T* p, const T* g, size_t n, double lr, double wd);

}  // namespace aha::policy::detail
