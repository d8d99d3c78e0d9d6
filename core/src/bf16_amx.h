// gemm_bf16's AMX micro-kernels (internal to core): Intel's tile unit (Sapphire Rapids and
// later) multiplies a 16-row tile of packed pairs by a 16-pair x 16-column panel in one
// instruction (TDPBF16PS), about four times what VDPBF16PS does per cycle.
//
// The unit adds each instruction's 32 products into the fp32 accumulator in its own order and
// rounding, which is not VDPBF16PS's chain, so its sums differ from the documented ones in the
// last bits. What the project relies on still holds: an output depends only on its row of a, its
// column of b and k (the depth blocks start at pair 0 and run in order, each row of a tile is
// summed alone), never on the batch, the tiling or the thread count.
#pragma once

#include <cstdint>

namespace aha::bf16 {

// True once the kernel granted this process the AMX tile state (Linux asks each process to
// request it); false on CPUs without AMX-BF16 or where the request fails.
bool amx_usable();

// out[r * ldo + v * 16 + c] (`rows` rows, 1 to 32; np panels, 1 or 2) = the sums over `pairs`
// pairs (a multiple of 16) of the rows of a (every `lda` words) and np panels of b (every
// `pstride` words); with add, the unit's sums start from out's values instead of zero.
void amx_tile(int rows, int np, const uint32_t* a, int64_t lda, int64_t pairs, const uint32_t* b,
              int64_t pstride, float* out, int64_t ldo, bool add = false);

}  // namespace aha::bf16
