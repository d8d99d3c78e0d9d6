// The batch-invariant weight GEMM of the decode path (gemm_xwt_rowstable, float).
//
// Each output y[i, j] is one chain over k in order, s = fma(x[i, k], w[j, k], s) from s = 0 (a
// multiply and an add where the build has no FMA), then + b[j]. The chain is the same whatever
// the tile, the batch, the split into tasks or the thread count, so a row's result depends on
// that row alone. The outputs sit in the SIMD lanes: the weight is read as panels of 16 output
// columns stored k-major ([in][16], zero-padded past `out`), so every step is one broadcast of
// x, one load of a panel row and one multiply-add per 16 outputs, with no reduction at the end.
// Against the earlier form (a 16-lane dot product per output and its reduction tree): geomean
// 1.5x on one core over the model's shapes at 16 to 1,024 rows, up to the core's FMA peak
// (bench/rowstable_ab/run.sh; docs/performance.md, "The lanes kernel").
//
// The panels are a transposed copy. While a WeightCache lives (one generate() call) a weight's
// copy is made once and kept; otherwise each call packs the panels it needs into a per-thread
// buffer. Either gives the same bits.
// tbb::is_inside_task (a preview in oneTBB 2021): whether a GEMM is nested in another loop's task.
#define TBB_PREVIEW_TASK_GROUP_EXTENSIONS 1
#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "aha/core/simd16.h"
#include "aha/core/tensor.h"
#include "aha/core/transpose16.h"
#include "nested.h"
#include "weight_cache.h"

namespace aha {

namespace {

constexpr int kLanes = 16;
// Panel rows (k steps, 64 bytes each) that tile() prefetches ahead of the one it reads.
constexpr int64_t kPrefetchK = 64;
using simd16::fmadd;
using simd16::load16;
using simd16::splat;
using simd16::V16;

int64_t n_panels(int64_t out) { return (out + kLanes - 1) / kLanes; }

// Panels [p0, p1) of w [out, in] into dst, k-major, zero past `out`: 16 x 16 blocks transposed
// in registers (packing runs once per weight and generate() call, but at one sequence and a short
// completion it costs as much as the decode). Rows of w are ldw apart; they fill the values
// [col0, col0 + in) of panels dst_in values deep (a key assembled from two sources).
void pack_panels(const float* w, int64_t in, int64_t out, int64_t p0, int64_t p1, float* dst,
                 int64_t ldw, int64_t dst_in, int64_t col0) {
  for (int64_t p = p0; p < p1; ++p) {
    float* d = dst + (p - p0) * dst_in * kLanes + col0 * kLanes;
    const int64_t rows = std::min<int64_t>(kLanes, out - p * kLanes);
    for (int64_t k0 = 0; k0 < in; k0 += kLanes) {
      const int64_t nk = std::min<int64_t>(kLanes, in - k0);
      V16 r[kLanes];
      for (int c = 0; c < kLanes; ++c) {
        const float* src = w + (p * kLanes + c) * ldw + k0;
        r[c] = V16{};
        if (c < rows && nk == kLanes) {
          r[c] = load16(src);
        } else if (c < rows) {
          std::memcpy(&r[c], src, nk * sizeof(float));
        }
      }
      transpose16x16(r);
      for (int64_t k = 0; k < nk; ++k) std::memcpy(d + (k0 + k) * kLanes, &r[k], 64);
    }
  }
}

void pack_panels(const float* w, int64_t in, int64_t out, int64_t p0, int64_t p1, float* dst) {
  pack_panels(w, in, out, p0, p1, dst, in, in, 0);
}

// R rows of x (every ldx values) by NV panels (every in * 16 values from wp): res[r][v * 16 + c].
// No zeroing of acc in memory (a loop that might not run made GCC zero a stack copy per tile),
// and res stays the destination: storing a whole tile straight into y made GCC store every
// accumulator to the stack in every step of the loop (2.7x slower).
template <int R, int NV>
void tile(const float* x, int64_t ldx, const float* wp, int64_t in, float* res) {
  if (in <= 0) {
    std::fill_n(res, R * NV * kLanes, 0.0f);
    return;
  }
  V16 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V16{};
  }
  int64_t k = 0;
  do {
    V16 wv[NV];
    // The panels stream from memory once per decode step (an expert's 16 rows reuse each line
    // 16 times, too few to hide its latency), and the hardware prefetcher runs too short a way
    // ahead of these few streams: fetch 4 KB ahead. Past a panel's end it fetches the next
    // panel, which a following tile reads; prefetches do not fault. One row stays without: its
    // chains are too short to pay for the extra loads when the weight sits in L3.
    if constexpr (R > 1) {
      for (int v = 0; v < NV; ++v) __builtin_prefetch(wp + (v * in + k + kPrefetchK) * kLanes);
    }
    for (int v = 0; v < NV; ++v) wv[v] = load16(wp + (v * in + k) * kLanes);
    for (int r = 0; r < R; ++r) {
      const V16 s = splat(x[r * ldx + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = fmadd(s, wv[v], acc[r][v]);
    }
  } while (++k < in);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) simd16::store16(res + (r * NV + v) * kLanes, acc[r][v]);
  }
}

struct Job {
  const float* x;
  const float* b;
  float* y;
  int64_t n, in, out;
  int64_t ldx, ldy;  // rows of x and y are ldx (>= in) and ldy (>= out) apart
};

// Rows [i, i + R) by panels [p, p + NV); wp points at panel p.
template <int R, int NV>
void tile_out(const Job& g, int64_t i, int64_t p, const float* wp) {
  float res[R * NV * kLanes];
  tile<R, NV>(g.x + i * g.ldx, g.ldx, wp, g.in, res);
  const int64_t j0 = p * kLanes, nj = std::min<int64_t>(NV * kLanes, g.out - j0);
  for (int r = 0; r < R; ++r) {
    float* yr = g.y + (i + r) * g.ldy + j0;
    const float* s = res + r * NV * kLanes;
    if (g.b == nullptr && nj == NV * kLanes) {
      // A whole tile: a copy of fixed size, which compiles to vector stores (a copy of nj values
      // calls memmove, 7% of a prefill's time).
      std::memcpy(yr, s, NV * kLanes * sizeof(float));
    } else if (g.b != nullptr) {
      for (int64_t c = 0; c < nj; ++c) yr[c] = s[c] + g.b[j0 + c];
    } else {
      std::memcpy(yr, s, nj * sizeof(float));
    }
  }
}

// R rows at i over panels [p0, p1) of the packed block wp (which starts at panel p0), NV at a
// time, then the panels left NV / 2, NV / 4, ... at a time (a lone chain waits on its own
// latency every step).
template <int R, int NV>
void rows_over(const Job& g, int64_t i, int64_t p0, int64_t p1, const float* wp) {
  int64_t p = p0;
  for (; p + NV <= p1; p += NV) tile_out<R, NV>(g, i, p, wp + (p - p0) * g.in * kLanes);
  if constexpr (NV > 1) {
    if (p < p1) rows_over<R, NV / 2>(g, i, p, p1, wp + (p - p0) * g.in * kLanes);
  }
}

// Rows [i0, i1) by panels [p0, p1). Blocks of 8 rows go two panels at a time (16 accumulators),
// panel pair outside so the pair stays cached across the blocks; the 1-7 rows left take more
// panels per tile (4 for one row: it is bound by the weight streams, not by its chains' latency,
// and 8 concurrent streams measured slower).
void block(const Job& g, int64_t i0, int64_t i1, int64_t p0, int64_t p1, const float* wp) {
  const int64_t i8 = i0 + (i1 - i0) / 8 * 8;
  if (i8 > i0) {
    int64_t p = p0;
    for (; p + 2 <= p1; p += 2) {
      for (int64_t i = i0; i < i8; i += 8) tile_out<8, 2>(g, i, p, wp + (p - p0) * g.in * kLanes);
    }
    if (p < p1) {
      for (int64_t i = i0; i < i8; i += 8) tile_out<8, 1>(g, i, p, wp + (p - p0) * g.in * kLanes);
    }
  }
  int64_t i = i8;
  if (i1 - i >= 4) {
    rows_over<4, 4>(g, i, p0, p1, wp);
    i += 4;
  }
  if (i1 - i >= 2) {
    rows_over<2, 4>(g, i, p0, p1, wp);
    i += 2;
  }
  if (i < i1) rows_over<1, 4>(g, i, p0, p1, wp);
}

// The panels of w kept by the live WeightCache, packed by the first caller; null without one.
CachedWeight* kept_copy(const float* w, int64_t in, int64_t out) {
  CachedWeight* e = cached_weight(w, out, in, WeightForm::f32_panels);
  if (e == nullptr) return e;
  std::call_once(e->once, [&] {
    const int64_t P = n_panels(out);
    e->values = aligned_array<float>(size_t(P * in * kLanes));
    // Isolated: while it waits, this thread must not pick up an outer task that asks for the
    // same copy (call_once would then wait on itself).
    tbb::this_task_arena::isolate([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, P, 8),
                        [&](const tbb::blocked_range<int64_t>& r) {
                          pack_panels(w, in, out, r.begin(), r.end(),
                                      e->values.get() + r.begin() * in * kLanes);
                        });
    });
  });
  return e;
}

// Multiply-adds per task: below this a GEMM runs on the calling thread.
constexpr int64_t kTaskMacs = int64_t{1} << 16;
// Bytes of x rows a task keeps in L2, and of panels a task packs or streams at once.
constexpr int64_t kXBlockBytes = int64_t{256} << 10;
constexpr int64_t kPanelBlockBytes = int64_t{256} << 10;
constexpr int64_t kMaxRowBlock = 256;
constexpr int64_t kMinTasks = 4;
// Multiply-adds below which a GEMM called from inside a task stays on its thread.
constexpr int64_t kNestedSerialMacs = int64_t{1} << 22;

}  // namespace

bool nested_small(int64_t macs) { return macs < kNestedSerialMacs && tbb::is_inside_task(); }

void gemm_xwt_lanes(const float* x, const float* w, const float* b, float* y, int64_t n,
                    int64_t in, int64_t out) {
  if (n <= 0 || out <= 0) return;
  const Job g{x, b, y, n, in, out, in, out};
  if (in <= 0) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < out; ++j) y[i * out + j] = b != nullptr ? b[j] : 0.0f;
    }
    return;
  }
  const CachedWeight* kept = kept_copy(w, in, out);
  const int64_t P = n_panels(out);
  const int64_t panel_bytes = in * kLanes * 4;
  const int64_t row_block = std::min(
      n, std::max<int64_t>(8, std::min(kMaxRowBlock, kXBlockBytes / (in * 4)) / 8 * 8));
  const int64_t row_blocks = (n + row_block - 1) / row_block;
  // Inside another loop's task (an expert of a MoE layer) a small product runs on this thread:
  // the loop already feeds the cores, and its tasks of a few microseconds cost more to split
  // than they saved (the experts' decode phase of `small` at 16 rows: 1.07-1.19x on 2 threads).
  const int64_t macs = n * in * out;
  const bool parallel = macs >= 2 * kTaskMacs && !nested_small(macs);
  // Panels per task: enough work per task, few enough to keep a packed block in L2, and at
  // least kMinTasks tasks where there are that many panels.
  int64_t group = std::max<int64_t>(1, kTaskMacs / (row_block * in * kLanes));
  group = std::min(group, std::max<int64_t>(1, kPanelBlockBytes / panel_bytes));
  const int64_t groups_wanted = (kMinTasks + row_blocks - 1) / row_blocks;
  group = std::min(group, std::max<int64_t>(1, (P + groups_wanted - 1) / groups_wanted));
  // Enough panels for independent chains: the 8-row tiles take 2 at a time, fewer rows 4 to 8.
  group = std::max<int64_t>(group, n >= 8 ? 2 : 4);
  if (!parallel) group = P;
  const int64_t n_groups = (P + group - 1) / group;
  static tbb::enumerable_thread_specific<std::vector<float>> scratch;
  auto run = [&](int64_t t) {
    const int64_t i0 = t / n_groups * row_block, p0 = t % n_groups * group;
    const int64_t i1 = std::min(n, i0 + row_block), p1 = std::min(P, p0 + group);
    const float* wp;
    if (kept) {
      wp = kept->values.get() + p0 * in * kLanes;
    } else {
      std::vector<float>& buf = scratch.local();
      buf.resize(group * in * kLanes);
      pack_panels(w, in, out, p0, p1, buf.data());
      wp = buf.data();
    }
    block(g, i0, i1, p0, p1, wp);
  };
  const int64_t tasks = row_blocks * n_groups;
  if (tasks == 1 || !parallel) {
    for (int64_t t = 0; t < tasks; ++t) run(t);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, tasks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t t = r.begin(); t < r.end(); ++t) run(t);
      },
      tbb::simple_partitioner());
}

int64_t lanes_panel_floats(int64_t in, int64_t out) { return n_panels(out) * in * kLanes; }

void pack_lanes_panels(const float* w, int64_t in, int64_t out, float* wp, int64_t ldw,
                       int64_t wp_in, int64_t col0) {
  pack_panels(w, in, out, 0, n_panels(out), wp, ldw < 0 ? in : ldw, wp_in < 0 ? in : wp_in, col0);
}

void gemm_xwt_lanes_packed(const float* x, int64_t ldx, const float* wp, float* y, int64_t n,
                           int64_t in, int64_t out, int64_t ldy) {
  if (n <= 0 || out <= 0) return;
  if (in <= 0) {
    for (int64_t i = 0; i < n; ++i) std::fill_n(y + i * ldy, out, 0.0f);
    return;
  }
  block({x, nullptr, y, n, in, out, ldx, ldy}, 0, n, 0, n_panels(out), wp);
}

}  // namespace aha
