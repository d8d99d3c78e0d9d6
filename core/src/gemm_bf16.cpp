// bf16 GEMM with fp32 accumulation (see gemm_bf16.h for the numerics).
//
// Both operands are packed once per call: rows of a into k pairs (one 32-bit word holds
// a(i, 2p) in its low half and a(i, 2p+1) in its high half, the layout VDPBF16PS reads from a
// broadcast), b into panels of 16 columns, pair-interleaved ([panel][pair][16 columns]); a
// transposed a goes into panels like b's (16 rows a panel), which pack without a transpose. A
// micro-tile of MR rows by NV panels keeps MR * NV accumulators in registers across the whole k
// range, so each output is summed in k order no matter which tile computes it; under AMX
// (bf16_amx.h) a micro-tile is 32 rows by 2 panels in tile registers, the same layouts loaded as
// tiles, their pairs at a stride of whole 16-pair blocks (bf16_pack.h). Packing costs
// O((m + n) k) against the product's O(m n k); decode, whose m is small, reuses its weights'
// packed copies through a WeightCache.
#include "aha/core/gemm_bf16.h"

#include "aha/core/aligned.h"
#include "aha/core/error.h"
#include "aha/core/machine.h"
#include "bf16_amx.h"
#include "bf16_micro.h"
#include "bf16_pack.h"
#include "nested.h"
#include "weight_cache.h"

#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace aha {

namespace {

std::atomic<MatmulPrecision> g_precision{MatmulPrecision::fp32};

enum class Kernel { amx, hw, emu };
constexpr const char* kKernelNames[] = {"amx", "avx512bf16", "emulated"};

bool cpu_bf16() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("avx512bf16") != 0;
  return has;
#else
  return false;
#endif
}

bool can_run(Kernel k) {
  return k == Kernel::emu || (k == Kernel::hw && cpu_bf16()) ||
         (k == Kernel::amx && bf16::amx_usable());
}

Kernel parse_kernel(const std::string& name, const std::string& key) {
  for (Kernel k : {Kernel::amx, Kernel::hw, Kernel::emu}) {
    if (name != kKernelNames[int(k)]) continue;
    if (!can_run(k)) fail(key, ": this CPU cannot run the bf16 kernel '", name, "'");
    return k;
  }
  fail(key, ": '", name, "' is not a bf16 kernel (amx, avx512bf16 or emulated)");
}

// AHA_BF16_KERNEL when set, else the fastest kernel the CPU runs.
Kernel default_kernel() {
  const char* env = std::getenv("AHA_BF16_KERNEL");
  if (env != nullptr && *env != '\0') return parse_kernel(env, "AHA_BF16_KERNEL");
  return can_run(Kernel::amx) ? Kernel::amx : can_run(Kernel::hw) ? Kernel::hw : Kernel::emu;
}

std::atomic<int> g_kernel{-1};  // a Kernel once chosen

Kernel kernel() {
  int k = g_kernel.load(std::memory_order_relaxed);
  if (k < 0) {
    int unset = -1;
    g_kernel.compare_exchange_strong(unset, int(default_kernel()));
    k = g_kernel.load();
  }
  return Kernel(k);
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

// Packing buffers, reused: a large product would otherwise pay a fresh mmap, page faults and
// zeroing per call. A pool per thread rather than one buffer, because a TBB worker that waits
// inside a parallel loop may run another product's tile (nested MoE and attention loops).
struct Buffer {
  AlignedArray<uint32_t> p;
  size_t n = 0;
};
thread_local std::vector<Buffer> t_pool;

class Scratch {
 public:
  explicit Scratch(size_t n) {
    if (!t_pool.empty()) {
      b_ = std::move(t_pool.back());
      t_pool.pop_back();
    }
    if (b_.n < n) {
      b_.p = aligned_array<uint32_t>(n);  // uninitialised: packing writes every word it reads
      b_.n = n;
    }
  }
  ~Scratch() { t_pool.push_back(std::move(b_)); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  uint32_t* data() { return b_.p.get(); }

 private:
  Buffer b_;
};

using bf16::kLanes;
using bf16::kMR;
using bf16::kNV;
using bf16::pack_panels;
using bf16::pack_rows;

typedef float V16 __attribute__((vector_size(64)));

struct Job {
  int64_t m, n, k, kp, n_panels;
  int64_t stride;      // pair_stride(k): pairs per packed row and per panel
  const uint32_t* ap;  // [m][stride]
  const uint32_t* bp;  // [n_panels][stride][16]
  float* c;
  int64_t ldc;
  bool accumulate;
  const float* bias;
  Kernel kernel;
  // With accumulate, amx starts the tile from c's values instead of adding c to the finished
  // sums (one pass over c, and no wait on the tile unit's stores): other bits than the add after.
  bool add_in_tile = false;
  // Pairs per panel of bp: stride, or more where b was packed over more than k
  // (gemm_bf16_packed).
  int64_t bstride = 0;
  // ap holds a as panels of 16 rows (bf16_micro.h), not as rows.
  bool a_panel = false;

  int64_t panel_words() const { return bstride * kLanes; }
  // Row i's first pair in ap.
  const uint32_t* a_row(int64_t i) const {
    return a_panel ? ap + i / kLanes * stride * kLanes + i % kLanes : ap + i * stride;
  }
};

constexpr int kAmxRows = 32, kAmxPanels = 2;

// Writes a computed tile (out[r][v][16], `panels` panels) to rows i.. and panels q.. of c.
void store_tile(const Job& j, const float* tile, int64_t i, int rows, int64_t q, int panels) {
  for (int r = 0; r < rows; ++r) {
    float* cr = j.c + (i + r) * j.ldc;
    for (int v = 0; v < panels; ++v) {
      const int64_t c0 = (q + v) * kLanes;
      const int64_t nc = std::min<int64_t>(kLanes, j.n - c0);
      const float* s = tile + (r * panels + v) * kLanes;
      if (nc == kLanes) {  // whole panel: the same adds, 16 lanes at a time
        V16 y, t;
        std::memcpy(&y, s, sizeof(y));
        if (j.accumulate) {
          std::memcpy(&t, cr + c0, sizeof(t));
          y = t + y;
        }
        if (j.bias != nullptr) {
          std::memcpy(&t, j.bias + c0, sizeof(t));
          y = y + t;
        }
        std::memcpy(cr + c0, &y, sizeof(y));
        continue;
      }
      for (int64_t c = 0; c < nc; ++c) {
        float y = j.accumulate ? cr[c0 + c] + s[c] : s[c];
        if (j.bias != nullptr) y += j.bias[c0 + c];
        cr[c0 + c] = y;
      }
    }
  }
}

// Rows [i0, i1) by panels [q0, q1) on AMX. A tile over whole panels without a bias, and
// without accumulate or with add_in_tile, is stored straight into c. Any other is stored to a
// buffer and written after the next tile's instructions are issued: reading a buffer the tile
// unit has just stored waits for those stores, and the tile unit works on meanwhile.
void run_block_amx(const Job& j, int64_t i0, int64_t i1, int64_t q0, int64_t q1) {
  constexpr int64_t kTile = kAmxRows * kAmxPanels * kLanes;
  alignas(64) float bufs[2][kTile];
  const int64_t pstride = j.panel_words();
  const bool direct = j.bias == nullptr && (!j.accumulate || j.add_in_tile);
  struct Pending {
    const float* tile = nullptr;
    int64_t i = 0, q = 0;
    int rows = 0, panels = 0;
  } pending;
  int cur = 0;
  for (int64_t q = q0; q < q1; q += kAmxPanels) {
    const int panels = int(std::min<int64_t>(kAmxPanels, q1 - q));
    const bool into_c = direct && (q + panels) * kLanes <= j.n;  // whole panels
    for (int64_t i = i0; i < i1;) {
      const int rows = int(std::min<int64_t>(kAmxRows, i1 - i));
      const uint32_t* a = j.ap + i * j.stride;
      const uint32_t* b = j.bp + q * pstride;
      if (into_c) {
        bf16::amx_tile(rows, panels, a, j.stride, j.stride, b, pstride,
                       j.c + i * j.ldc + q * kLanes, j.ldc, j.accumulate);
      } else {
        bf16::amx_tile(rows, panels, a, j.stride, j.stride, b, pstride, bufs[cur],
                       panels * kLanes);
      }
      if (pending.tile != nullptr) {
        store_tile(j, pending.tile, pending.i, pending.rows, pending.q, pending.panels);
        pending.tile = nullptr;
      }
      if (!into_c) {
        pending = {bufs[cur], i, q, rows, panels};
        cur ^= 1;
      }
      i += rows;
    }
  }
  if (pending.tile != nullptr) {
    store_tile(j, pending.tile, pending.i, pending.rows, pending.q, pending.panels);
  }
}

// Rows [i0, i1) by panels [q0, q1).
void run_block(const Job& j, int64_t i0, int64_t i1, int64_t q0, int64_t q1) {
  if (j.kernel == Kernel::amx) {
    run_block_amx(j, i0, i1, q0, q1);
    return;
  }
  alignas(64) float tile[kMR * kNV * kLanes];
  const int64_t pstride = j.panel_words();
  for (int64_t q = q0; q < q1; q += kNV) {
    const int panels = int(std::min<int64_t>(kNV, q1 - q));
    // A tile whose panels are all whole is written into c by the micro-kernel; the last,
    // partial panel's tiles go through a buffer that store_tile writes column by column.
    const bool whole = (q + panels) * kLanes <= j.n;
    const bf16::Dest buffer{tile, panels * kLanes, false, nullptr};
    for (int64_t i = i0; i < i1;) {
      // A tile of a panel-packed a stays inside its panel (blocks need not start at one).
      const int rows =
          bf16::tile_rows(j.a_panel ? std::min(i1 - i, kLanes - i % kLanes) : i1 - i);
      const bf16::Micro micro =
          bf16::pick_micro(rows, panels, j.kernel == Kernel::hw, j.a_panel);
      const uint32_t *a = j.a_row(i), *b = j.bp + q * pstride;
      if (whole) {
        micro(a, j.stride, j.kp, b, pstride,
              {j.c + i * j.ldc + q * kLanes, j.ldc, j.accumulate,
               j.bias == nullptr ? nullptr : j.bias + q * kLanes});
      } else {
        micro(a, j.stride, j.kp, b, pstride, buffer);
        store_tile(j, tile, i, rows, q, panels);
      }
      i += rows;
    }
  }
}

}  // namespace

uint16_t to_bf16(float x) {
  uint32_t u = bits(x);
  if ((u & 0x7f800000u) == 0) return uint16_t((u >> 16) & 0x8000u);  // zero or subnormal
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

namespace {
thread_local bool t_force_fp32 = false;
}  // namespace

void set_matmul_precision(MatmulPrecision p) { g_precision.store(p); }
MatmulPrecision matmul_precision() {
  return t_force_fp32 ? MatmulPrecision::fp32 : g_precision.load(std::memory_order_relaxed);
}

MatmulPrecision matmul_precision_setting() { return g_precision.load(); }

Fp32MatmulScope::Fp32MatmulScope() : prev_(t_force_fp32) { t_force_fp32 = true; }
Fp32MatmulScope::~Fp32MatmulScope() { t_force_fp32 = prev_; }

const char* matmul_precision_name(MatmulPrecision p) {
  return p == MatmulPrecision::bf16 ? "bf16" : "fp32";
}

bool parse_matmul_precision(const char* name, MatmulPrecision* out) {
  const std::string s = name == nullptr ? "" : name;
  if (s == "fp32") {
    *out = MatmulPrecision::fp32;
  } else if (s == "bf16") {
    *out = MatmulPrecision::bf16;
  } else {
    return false;
  }
  return true;
}

MatmulPrecision matmul_precision_from(const std::string& name, const std::string& key) {
  MatmulPrecision p;
  if (!parse_matmul_precision(name.c_str(), &p)) {
    fail(key, ": '", name, "' is not a matmul precision (fp32 or bf16)");
  }
  return p;
}

bool cpu_has_amx_bf16() {
#if defined(__x86_64__)
  static const bool has =
      __builtin_cpu_supports("amx-tile") != 0 && __builtin_cpu_supports("amx-bf16") != 0;
  return has;
#else
  return false;
#endif
}

const char* bf16_kernel() { return kKernelNames[int(kernel())]; }
void set_bf16_kernel(const std::string& name, const std::string& key) {
  g_kernel.store(int(parse_kernel(name, key)));
}

namespace {

// Blocks of whole micro-tiles, sized from the shape alone (results never depend on them).
constexpr int64_t kRowBlock = 64, kPanelBlock = 4 * kNV;

bool small(int64_t m, int64_t n, int64_t k) { return m * n * k < (int64_t{1} << 18); }

// f(p_lo, p_hi) over the (k + 1) / 2 pairs of a transposed operand in parallel, two blocks of
// 16 pairs a task (p_lo a multiple of 16): the split of its packing by source rows.
template <typename F>
void over_pair_blocks(int64_t k, F&& f) {
  const int64_t kp = (k + 1) / 2;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, (kp + kLanes - 1) / kLanes, 2),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      f(r.begin() * kLanes, std::min(kp, r.end() * kLanes));
                    });
}

void pack_a(const MatRef& a, int64_t m, int64_t k, uint32_t* ap, bool parallel) {
  const int64_t stride = bf16::pair_stride(k);
  if (!parallel) {
    pack_rows(a, 0, m, k, ap);
    return;
  }
  if (a.trans) {  // split over the pairs, for the reason of pack_b's
    over_pair_blocks(k, [&](int64_t p_lo, int64_t p_hi) {
      bf16::pack_row_pairs(a, p_lo, p_hi, m, k, ap);
    });
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, m, kRowBlock),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      pack_rows(a, r.begin(), r.end(), k, ap + r.begin() * stride);
                    });
}

void pack_b(const MatRef& b, int64_t n, int64_t k, uint32_t* bp, bool parallel) {
  const int64_t pstride = bf16::pair_stride(k) * kLanes, n_panels = (n + kLanes - 1) / kLanes;
  if (!parallel) {
    pack_panels(b, 0, n_panels, n, k, bp);
    return;
  }
  if (b.trans) {
    // Split over the pairs, not the panels: a task's source rows are read whole (a weight
    // gradient's x or dy, in from L3), not a 64-column stripe of every row by each of 4 tasks.
    over_pair_blocks(k, [&](int64_t p_lo, int64_t p_hi) {
      bf16::pack_panel_pairs(b, p_lo, p_hi, n, k, bp);
    });
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n_panels, 4), [&](const auto& r) {
    pack_panels(b, r.begin(), r.end(), n, k, bp + r.begin() * pstride);
  });
}

void run(const Job& j, bool parallel) {
  if (!parallel) {
    run_block(j, 0, j.m, 0, j.n_panels);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range2d<int64_t>(0, j.m, kRowBlock, 0, j.n_panels, kPanelBlock),
      [&](const tbb::blocked_range2d<int64_t>& r) {
        run_block(j, r.rows().begin(), r.rows().end(), r.cols().begin(), r.cols().end());
      },
      tbb::simple_partitioner());
}

}  // namespace

int64_t bf16_packed_words(int64_t n, int64_t k) {
  return (n + kLanes - 1) / kLanes * bf16::pair_stride(k) * kLanes;
}

namespace {

// c (+)= a b^T against b already packed with b_stride pairs a panel (b_stride >= pair_stride(k));
// a is packed here. add_in_tile as Job's.
void product_packed_b(int64_t m, int64_t n, int64_t k, MatRef a, const uint32_t* bp,
                      int64_t b_stride, float* c, int64_t ldc, bool accumulate, const float* bias,
                      bool parallel, bool add_in_tile) {
  const int64_t stride = bf16::pair_stride(k);
  const Kernel kern = kernel();
  // A transposed a (a weight gradient's dy, the attention backward's blocks) packs as panels,
  // like b, where the kernel reads them: three times faster than as rows. AMX loads rows.
  const bool a_panel = a.trans && kern != Kernel::amx;
  Scratch ap(size_t(a_panel ? bf16_packed_words(m, k) : m * stride));
  if (a_panel) {
    pack_b(a, m, k, ap.data(), parallel);
  } else {
    pack_a(a, m, k, ap.data(), parallel);
  }
  run({m, n, k, (k + 1) / 2, (n + kLanes - 1) / kLanes, stride, ap.data(), bp, c, ldc, accumulate,
       bias, kern, add_in_tile, b_stride, a_panel},
      parallel);
}

// gemm_bf16, with add_in_tile as Job's.
void product(int64_t m, int64_t n, int64_t k, MatRef a, MatRef b, float* c, int64_t ldc,
             bool accumulate, const float* bias, bool serial, bool add_in_tile) {
  if (m <= 0 || n <= 0) return;
  const bool parallel = !serial && !small(m, n, k);
  Scratch bp(size_t(bf16_packed_words(n, k)));
  pack_b(b, n, k, bp.data(), parallel);
  product_packed_b(m, n, k, a, bp.data(), bf16::pair_stride(k), c, ldc, accumulate, bias, parallel,
                   add_in_tile);
}

}  // namespace

void gemm_bf16(int64_t m, int64_t n, int64_t k, MatRef a, MatRef b, float* c, int64_t ldc,
               bool accumulate, const float* bias, bool serial) {
  product(m, n, k, a, b, c, ldc, accumulate, bias, serial, true);
}

void pack_bf16_operand(MatRef b, int64_t n, int64_t k, uint32_t* words) {
  pack_b(b, n, k, words, false);
}

void gemm_bf16_packed(int64_t m, int64_t n, int64_t k, MatRef a, const uint32_t* b, int64_t b_k,
                      float* c, int64_t ldc, bool accumulate, bool serial) {
  AHA_CHECK(k <= b_k && (k == b_k || k % (2 * bf16::kPairBlock) == 0),
            "gemm_bf16_packed: k = ", k, " of an operand packed over ", b_k);
  if (m <= 0 || n <= 0) return;
  product_packed_b(m, n, k, a, b, bf16::pair_stride(b_k), c, ldc, accumulate, nullptr,
                   !serial && !small(m, n, k), true);
}

void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx,
                      const float* w, float* y, int64_t ldy, bool accumulate, const float* bias,
                      bool serial) {
  if (m <= 0 || n <= 0) return;  // before the cache: an empty product keeps no copy
  // Inside another loop's task (a decode row block, a MoE expert) a small product stays on this
  // thread, as the lanes kernel's does: that loop already feeds the cores.
  serial = serial || nested_small(m * n * k);
  const auto e = cached_weight(w, n, k, WeightForm::bf16_panels);
  if (e == nullptr) {
    product(m, n, k, {x, ldx, false}, {w, k, false}, y, ldy, accumulate, bias, serial, false);
    return;
  }
  std::call_once(e->once, [&] {
    e->words = aligned_array<uint32_t>(size_t(bf16_packed_words(n, k)));
    // Isolated: while it waits, this thread must not pick up an outer task that asks for the
    // same weight (call_once would then wait on itself).
    tbb::this_task_arena::isolate([&] { pack_b({w, k, false}, n, k, e->words.get(), !serial); });
  });
  product_packed_b(m, n, k, {x, ldx, false}, e->words.get(), bf16::pair_stride(k), y, ldy,
                   accumulate, bias, !serial && !small(m, n, k), false);
}

}  // namespace aha
