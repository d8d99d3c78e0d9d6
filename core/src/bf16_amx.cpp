// AMX micro-kernels for gemm_bf16 (see bf16_amx.h).
#include "bf16_amx.h"

#include "aha/core/machine.h"

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define AHA_AMX 1
#endif

namespace aha::bf16 {

#if AHA_AMX

namespace {

// Linux keeps the 8 KiB tile state off until a process asks (arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); without the grant the first tile instruction raises SIGILL.
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3 accumulate, 4-5 hold rows of a, 6-7 panels of b, every row 64 bytes. The first row
// group (tiles 0, 1, 4) has r1 rows, the second (2, 3, 5) r2: a tile holds only the rows it
// computes (decode at batch 1 multiplies one row; a 16-row tile of a would load 16 cache lines
// for it, while TDPBF16PS takes as long for one row as for 16). Loading a configuration costs
// about 200 cycles, so a thread keeps its configuration until the rows change; nothing else in
// the process touches the tiles.
thread_local int t_rows[2] = {0, 0};

__attribute__((target("amx-tile"))) void configure(int r1, int r2) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    const bool second = t == 2 || t == 3 || t == 5;
    cfg.rows[t] = uint8_t(t >= 6 ? 16 : second ? r2 : r1);
    cfg.colsb[t] = 64;
  }
  // GCC's _tile_loadconfig declares a read of 8 bytes, not 64: without this barrier the stores
  // to colsb and rows may be dropped as dead (a scratch build did), and LDTILECFG then faults.
  asm volatile("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
  t_rows[0] = r1;
  t_rows[1] = r2;
}

// Tile numbers must be constants, hence one instantiation per shape.
template <int RG, int NP>
__attribute__((target("amx-tile,amx-bf16"))) void tile_kernel(int rows, const uint32_t* a,
                                                               int64_t lda, int64_t pairs,
                                                               const uint32_t* b, int64_t pstride,
                                                               float* out, int64_t ldo,
                                                               bool add) {
  const int r1 = rows < 16 ? rows : 16, r2 = RG == 2 ? rows - 16 : 16;
  if (t_rows[0] != r1 || t_rows[1] != r2) configure(r1, r2);
  const int64_t a_bytes = lda * 4;
  const int64_t out_bytes = ldo * 4;
  if (add) {
    _tile_loadd(0, out, out_bytes);
    if (NP == 2) _tile_loadd(1, out + 16, out_bytes);
    if (RG == 2) _tile_loadd(2, out + 16 * ldo, out_bytes);
    if (RG == 2 && NP == 2) _tile_loadd(3, out + 16 * ldo + 16, out_bytes);
  } else {
    _tile_zero(0);
    if (NP == 2) _tile_zero(1);
    if (RG == 2) _tile_zero(2);
    if (RG == 2 && NP == 2) _tile_zero(3);
  }
  for (int64_t p = 0; p < pairs; p += 16) {
    _tile_loadd(4, a + p, a_bytes);
    _tile_loadd(6, b + p * 16, 64);
    _tile_dpbf16ps(0, 4, 6);
    if (NP == 2) {
      _tile_loadd(7, b + pstride + p * 16, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if (RG == 2) {
      _tile_loadd(5, a + 16 * lda + p, a_bytes);
      _tile_dpbf16ps(2, 5, 6);
      if (NP == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, out, out_bytes);
  if (NP == 2) _tile_stored(1, out + 16, out_bytes);
  if (RG == 2) _tile_stored(2, out + 16 * ldo, out_bytes);
  if (RG == 2 && NP == 2) _tile_stored(3, out + 16 * ldo + 16, out_bytes);
}

bool request_tiles() {
  return cpu_has_amx_bf16() &&
         syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

}  // namespace

bool amx_usable() {
  static const bool ok = request_tiles();
  return ok;
}

void amx_tile(int rows, int np, const uint32_t* a, int64_t lda, int64_t pairs, const uint32_t* b,
              int64_t pstride, float* out, int64_t ldo, bool add) {
  if (rows > 16) {
    np == 2 ? tile_kernel<2, 2>(rows, a, lda, pairs, b, pstride, out, ldo, add)
            : tile_kernel<2, 1>(rows, a, lda, pairs, b, pstride, out, ldo, add);
  } else {
    np == 2 ? tile_kernel<1, 2>(rows, a, lda, pairs, b, pstride, out, ldo, add)
            : tile_kernel<1, 1>(rows, a, lda, pairs, b, pstride, out, ldo, add);
  }
}

#else

bool amx_usable() { return false; }
// Never called: amx_usable() is false here.
void amx_tile(int, int, const uint32_t*, int64_t, int64_t, const uint32_t*, int64_t, float*,
              int64_t, bool) {}

#endif

}  // namespace aha::bf16
