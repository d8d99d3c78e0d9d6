// Packing of gemm_bf16's operands (internal to core): fp32 -> bf16 pairs, vectorised for every
// layout, with the same rounding as to_bf16.
#pragma once

#include <cstdint>

#include "aha/core/gemm_bf16.h"

namespace aha::bf16 {

constexpr int kLanes = 16;

// Rows [i0, i1) of r as pairs: out[(i - i0) * kp + p] holds r(i, 2p) in its low half and
// r(i, 2p + 1) (0 past k) in its high half; kp = (k + 1) / 2.
void pack_rows(const MatRef& r, int64_t i0, int64_t i1, int64_t k, uint32_t* out);

// Panel q: columns 16q .. 16q + 15 of r's rows (r(j, .) for j in the panel) as [pair][16],
// columns past n zero.
void pack_panel(const MatRef& r, int64_t q, int64_t n, int64_t k, uint32_t* out);

}  // namespace aha::bf16
