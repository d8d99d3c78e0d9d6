// Packing of gemm_bf16's operands (internal to core): fp32 -> bf16 pairs, vectorised for every
// layout, with the same rounding as to_bf16.
#pragma once

#include <cstdint>

#include "aha/core/gemm_bf16.h"

namespace aha::bf16 {

constexpr int kLanes = 16;

// Packed rows and panels hold their pairs at a stride rounded up to whole blocks of 16 pairs, the
// k depth of one AMX tile, with zero pairs past kp = (k + 1) / 2: the AMX kernel then loads
// whole tiles, and the layout stays the same whichever kernel runs (cached weights are packed
// once).
constexpr int64_t kPairBlock = 16;
inline int64_t pair_stride(int64_t k) {
  return ((k + 1) / 2 + kPairBlock - 1) / kPairBlock * kPairBlock;
}

// Rows [i0, i1) of r as pairs: out[(i - i0) * pair_stride(k) + p] holds r(i, 2p) in its low
// half and r(i, 2p + 1) (0 past k) in its high half.
void pack_rows(const MatRef& r, int64_t i0, int64_t i1, int64_t k, uint32_t* out);
// A transposed r's pairs [p_lo, p_hi) (p_lo a multiple of 16) of all m rows, into the whole
// packed operand `out`: a task reads whole source rows (see pack_panel_pairs).
void pack_row_pairs(const MatRef& r, int64_t p_lo, int64_t p_hi, int64_t m, int64_t k,
                    uint32_t* out);

// Panels [q0, q1), one every pair_stride(k) * 16 words of out: panel q holds columns
// 16q .. 16q + 15 of r's rows (r(j, .) for j in the panel) as [pair_stride(k)][16], columns past
// n zero.
void pack_panels(const MatRef& r, int64_t q0, int64_t q1, int64_t n, int64_t k, uint32_t* out);
// A transposed r's pairs [p_lo, p_hi) (p_lo a multiple of 16) of every panel, into the whole
// packed operand `out` (the padding past (k + 1) / 2 by the call whose p_hi is that): a task
// then reads whole source rows, which its blocks of 32 rows keep in L1 across the panels.
void pack_panel_pairs(const MatRef& r, int64_t p_lo, int64_t p_hi, int64_t n, int64_t k,
                      uint32_t* out);

// dst[i] = from_bf16(to_bf16(src[i])) for i < n: values as the kernels see them.
void round_values(const float* src, int64_t n, float* dst);
// n values (a multiple of 32) as bf16 in blocks of 32: word l of a block holds value l in its
// low half and value l + 16 in its high half (tensor.h's pack_bf16_blocks).
void pack_blocks(const float* src, int64_t n, uint32_t* dst);

}  // namespace aha::bf16
