// gemm_bf16's AVX512-BF16 micro-kernels and their emulation (internal to core). A micro-tile of
// MR rows of packed pairs by NV panels of 16 columns keeps MR * NV accumulators in registers
// across the whole depth, so each output is summed in pair order whichever tile computes it.
// The emulation adds each pair's two exact products as VDPBF16PS does, so both give the same
// bits.
#pragma once

#include <cstdint>

namespace aha::bf16 {

constexpr int kMR = 8;  // rows per micro-tile
constexpr int kNV = 3;  // 16-column panels per micro-tile

// Where a micro-kernel writes its rows x panels * 16 sums: c's rows are ldc apart; under
// accumulate each sum is added to c's value, then the bias (the tile's first column's, or
// nullptr) is added, the adds store_tile makes. A tile over whole panels goes straight to the
// product's c, so its sums leave the registers once.
struct Dest {
  float* c;
  int64_t ldc;
  bool accumulate;
  const float* bias;
};

// a: the tile's first row. As rows (pack_rows), row r's pair p is a[r * lda + p]; as a panel
// (pack_panels, the layout of b; lda unused), a[p * 16 + r]: a transposed operand packs into a
// panel without the 16 x 16 transposes rows need, three times faster.
using Micro = void (*)(const uint32_t* a, int64_t lda, int64_t kp, const uint32_t* b,
                       int64_t pstride, const Dest& d);

// The tile height for rows_left rows: 8, 4, 2 or 1 (tails reuse a smaller tile, same sums).
int tile_rows(int64_t rows_left);

// The kernel for a tile of `rows` (a tile_rows value) by 1..kNV panels; hw: AVX512-BF16, else
// the emulation; a_panel: a is packed as a panel. The sums do not depend on a's layout.
Micro pick_micro(int rows, int panels, bool hw, bool a_panel = false);

}  // namespace aha::bf16
