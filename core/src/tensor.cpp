// Parallel GEMM shapes of a linear layer. TBB splits the output into a fixed number of tiles
// chosen from the sizes alone (never from thread timing, so runs repeat bit for bit for any
// thread count); each tile is one single-threaded BLAS call: OpenBLAS (Debian's pthread build
// set to one thread, run-time CPU dispatch) when aha is built with it, Eigen otherwise. One
// single-threaded call per tile keeps TBB the only thread pool.
#include "aha/core/tensor.h"

#include "aha/core/gemm_bf16.h"
#include "aha/core/gemm_serial.h"
#include "aha/core/aligned.h"
#include "aha/core/machine.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#ifdef AHA_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace aha {

namespace {

// A fixed grid of tiles for C[M, N] = op(A)[M, K] op(B)[K, N], from the sizes and the machine's
// core count alone (never the thread count, so a run repeats bit for bit on any number of
// threads; the grid does decide the bits, as OpenBLAS's blocking follows each tile's shape).
// Every tile is one BLAS call, and every call packs its own slices of both operands: a grid of
// r x c tiles packs A c times and B r times, where one multi-threaded BLAS call packs each once.
// So:
// - tiles of at least kMinTileFlops (a power-of-two count, at most max_tiles()): the old policy's
//   32-MFLOP tiles were up to 32 row slices that each packed the whole weight; at model shapes
//   that redundant packing was the gap to one direct OpenBLAS call (docs/performance.md);
// - at least kMinTiles when the sizes allow (tiles of kMinSplitFlops or more), so 2-4 cores share
//   mid-size products;
// - of the r x c splits of that count, the one that packs the fewest values (c M + r N per k):
//   rows for tall products, columns for wide ones, both for square ones. Tile edges are
//   multiples of 16, the micro-kernels' row blocks;
// - one tile inside a task of gemms_of_loop_task (a MoE layer's experts, whose loop feeds the
//   cores): 16 experts of 512 x 256 x 128 on two threads ran 1.1-1.2x faster as one call each.
struct TileGrid {
  int64_t rows, cols;  // a tile's height and width
};

// The machine's cores, read once (glibc reads them from /sys on every call).
int64_t machine_cores() {
  static const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  return cores;
}

// Two tiles a core of this machine (a power of two from 4 to 32), so that load from other
// processes evens out, and no more: on a 2-core Xeon a 2048 x 2048 x 2048 product ran at 255-266
// GFLOP/s in 32 tiles and 293 in 4, against 318 for one 2-thread OpenBLAS call.
int64_t max_tiles() {
  static const int64_t tiles = [] {
    const int64_t cores = machine_cores();
    int64_t t = 4;
    while (t < 32 && t < 2 * cores) t *= 2;
    return t;
  }();
  return tiles;
}

// Set by gemms_of_loop_task: this thread's products are one tile each.
thread_local bool t_one_tile = false;

TileGrid tile_grid(int64_t m, int64_t n, int64_t k) {
  if (t_one_tile) return {std::max<int64_t>(m, 1), std::max<int64_t>(n, 1)};
  constexpr double kMinTileFlops = 256.0 * (1 << 20), kMinSplitFlops = 2.0 * (1 << 20);
  constexpr int64_t kMinTiles = 4, kAlign = 16;
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const int64_t max = max_tiles();
  int64_t tiles = 1;
  while (tiles < max && flops / double(2 * tiles) >= kMinTileFlops) tiles *= 2;
  while (tiles < kMinTiles && flops / double(2 * tiles) >= kMinSplitFlops &&
         (m / kAlign) * (n / kAlign) >= 2 * tiles) {
    tiles *= 2;
  }
  auto round_up = [](int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; };
  for (; tiles > 1; tiles /= 2) {
    int64_t best_r = 0;
    double best_cost = 0;
    for (int64_t r = tiles; r >= 1; r /= 2) {
      const int64_t c = tiles / r;
      if ((r > 1 && m < kAlign * r) || (c > 1 && n < kAlign * c)) continue;
      const double cost = double(c) * double(m) + double(r) * double(n);
      if (best_r == 0 || cost < best_cost) best_r = r, best_cost = cost;
    }
    if (best_r != 0) {
      const int64_t c = tiles / best_r;
      return {best_r > 1 ? round_up((m + best_r - 1) / best_r) : m,
              c > 1 ? round_up((n + c - 1) / c) : n};
    }
  }
  return {std::max<int64_t>(m, 1), std::max<int64_t>(n, 1)};
}

#ifdef AHA_WITH_OPENBLAS
// Debian's OpenBLAS (0.3.21) does not know AMD's AVX-512 cores (Zen 4, Zen 5) and runs its
// AVX2 "Haswell" kernels there, as it does wherever OPENBLAS_CORETYPE=Haswell is set (a common
// work-around for old OpenBLAS on new CPUs, set on our own machines): sgemm then runs at half
// of what the core does, 100 against 185-200 GFLOP/s per core on a Zen 5 EPYC. Its AVX-512
// "SkylakeX" kernels need only AVX-512 F/CD/BW/DQ/VL (OpenBLAS 0.3.22+ picks them on Zen 4
// itself). The library chooses in its constructor, before aha runs; its dynamic-arch build
// exports the functions that choose again. AHA_BLAS_CORE=keep leaves OpenBLAS's choice, any
// other value names the kernels to use.
extern "C" void gotoblas_dynamic_init(void) __attribute__((weak));
extern "C" void gotoblas_dynamic_quit(void) __attribute__((weak));

bool avx2_kernels_on_avx512_cpu() {
  const std::string core = openblas_get_corename();
  const bool avx2 = core == "Haswell" || core == "Zen" || core == "Sandybridge";
  return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}

// The kernels to switch to, or "" to keep OpenBLAS's own choice.
std::string blas_core_wanted() {
  const char* asked = std::getenv("AHA_BLAS_CORE");
  if (asked != nullptr && *asked != '\0') return std::string(asked) == "keep" ? "" : asked;
  return avx2_kernels_on_avx512_cpu() ? "SkylakeX" : "";
}

// Runs during static initialisation, before any thread of aha calls BLAS.
[[maybe_unused]] const bool kBlasReady = [] {
  const std::string core = blas_core_wanted();
  if (!core.empty() && gotoblas_dynamic_init != nullptr && gotoblas_dynamic_quit != nullptr) {
    const char* before = std::getenv("OPENBLAS_CORETYPE");
    const std::string saved = before != nullptr ? before : "";
    setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();  // an unknown name falls back to OpenBLAS's detection
    // Child processes (the code sandbox) see the environment they were given.
    if (before != nullptr) setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
    else unsetenv("OPENBLAS_CORETYPE");
  }
  // One OpenBLAS thread per call: TBB owns the cores, and calls come from several TBB workers
  // at once (which the pthread build allows; the serial build shares one buffer and does not).
  openblas_set_num_threads(1);
  return true;
}();
#endif


template <typename F>
void for_tiles(int64_t n, int64_t rows_per_tile, F&& f) {
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, rows_per_tile),
                    [&](const tbb::blocked_range<int64_t>& r) { f(r.begin(), r.end()); },
                    tbb::simple_partitioner());
}

// f(r0, r1, c0, c1) for every tile of tile_grid(m, n, k) over C[m, n], one TBB task each.
template <typename F>
void for_grid(int64_t m, int64_t n, int64_t k, F&& f) {
  const TileGrid g = tile_grid(m, n, k);
  const int64_t tr = (m + g.rows - 1) / g.rows, tc = (n + g.cols - 1) / g.cols;
  tbb::parallel_for(int64_t{0}, tr * tc, [&](int64_t t) {
    const int64_t r0 = t / tc * g.rows, c0 = t % tc * g.cols;
    f(r0, std::min(m, r0 + g.rows), c0, std::min(n, c0 + g.cols));
  }, tbb::simple_partitioner());
}

// The weight gradient dW[out, in] = dy^T x sums over the tokens (k). When dW is small against
// the tokens, a grid over dW's rows and columns packs each tile's slice of the long operands
// again and again; splitting the tokens instead packs every value once, at the price of one
// buffer per part and their sum. Returns the tokens per part, or 0 to keep the grid: the part
// count is the grid's tile count, both from the sizes alone.
int64_t token_split_rows(int64_t out, int64_t in, int64_t n) {
  const TileGrid g = tile_grid(out, in, n);
  const int64_t r = (out + g.rows - 1) / g.rows, c = (in + g.cols - 1) / g.cols, parts = r * c;
  if (parts == 1 || n < 16 * parts) return 0;
  const double grid_cost = double(c * out + r * in) * double(n);
  const double split_cost = double(out + in) * double(n) + 2.0 * double(parts * out) * double(in);
  if (split_cost >= grid_cost) return 0;
  return ((n + parts - 1) / parts + 15) / 16 * 16;
}

}  // namespace

// Under `precision: bf16` the float products run on the bf16 kernel (fp64 ones never do:
// they are the finite-difference references; callers check T).
static bool bf16_route() { return matmul_precision() == MatmulPrecision::bf16; }

template <typename T>
void gemm_xwt(const T* x, const T* w, const T* b, T* y, int64_t n, int64_t in, int64_t out,
              bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_route()) {
      gemm_bf16_weight(n, out, in, x, in, w, y, out, accumulate, b);
      return;
    }
  }
  const T beta = accumulate ? T(1) : T(0);
  // Few rows (decode): split the output columns instead, so every core still works.
  if (n < 16 && out >= 256 && !t_one_tile) {
    for_tiles(out, std::max<int64_t>(64, (out / 16 + 15) / 16 * 16), [&](int64_t c0, int64_t c1) {
      gemm_serial<T>(false, true, n, c1 - c0, in, T(1), x, in, w + c0 * in, in, beta, y + c0, out);
      if (b != nullptr) {
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = c0; c < c1; ++c) y[r * out + c] += b[c];
        }
      }
    });
    return;
  }
  for_grid(n, out, in, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    gemm_serial<T>(false, true, r1 - r0, c1 - c0, in, T(1), x + r0 * in, in, w + c0 * in, in, beta,
                   y + r0 * out + c0, out);
    if (b != nullptr) {
      StridedMap<T>(y + r0 * out + c0, r1 - r0, c1 - c0, Eigen::OuterStride<>(out)).rowwise() +=
          CVecMap<T>(b + c0, c1 - c0).transpose();
    }
  });
}

template <typename T>
void gemm_dyw(const T* dy, const T* w, T* dx, int64_t n, int64_t in, int64_t out,
              bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_route()) {
      gemm_bf16(n, in, out, {dy, out, false}, {w, in, true}, dx, in, accumulate, nullptr);
      return;
    }
  }
  const T beta = accumulate ? T(1) : T(0);
  for_grid(n, in, out, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    gemm_serial<T>(false, false, r1 - r0, c1 - c0, out, T(1), dy + r0 * out, out, w + c0, in, beta,
                   dx + r0 * in + c0, in);
  });
}

// db[o0:o1] += the column sums of dy[n, out] there, each summed over the rows in order. Not
// Eigen's colwise().sum(): its packet path sums four rows at a time, so which columns it takes
// depended on db's alignment in memory, and the bits of db with it.
template <typename T>
void add_column_sums(const T* dy, int64_t n, int64_t out, int64_t o0, int64_t o1, T* db) {
  std::vector<T> sum(dy + o0, dy + o1);
  for (int64_t i = 1; i < n; ++i) {
    const T* row = dy + i * out;
    for (int64_t o = o0; o < o1; ++o) sum[o - o0] += row[o];
  }
  if (n > 0) {
    for (int64_t o = o0; o < o1; ++o) db[o] += sum[o - o0];
  }
}

// dw += dy^T x with the tokens in parts of `rows`: each part's product into its own buffer (one
// task each), then dw += part 0 + part 1 + ... in that order, whatever the thread count.
template <typename T>
void gemm_dytx_token_split(const T* dy, const T* x, T* dw, int64_t n, int64_t in, int64_t out,
                           int64_t rows) {
  const int64_t parts = (n + rows - 1) / rows, size = out * in;
  std::vector<T> part(parts * size);
  tbb::parallel_for(
      int64_t{0}, parts,
      [&](int64_t p) {
        const int64_t t0 = p * rows, t1 = std::min(n, t0 + rows);
        gemm_serial<T>(true, false, out, in, t1 - t0, T(1), dy + t0 * out, out, x + t0 * in, in,
                       T(0), part.data() + p * size, in);
      },
      tbb::simple_partitioner());
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, size, 4096),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      for (int64_t i = r.begin(); i < r.end(); ++i) {
                        T sum = part[i];
                        for (int64_t p = 1; p < parts; ++p) sum += part[p * size + i];
                        dw[i] += sum;
                      }
                    });
}


template <typename T>
void gemm_dytx(const T* dy, const T* x, T* dw, T* db, int64_t n, int64_t in, int64_t out) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_route()) {
      // Both operands transposed (tokens made the pairs), whichever of out and in is larger:
      // dw^T = x^T dy into a buffer and a transposed add gives the same bits (each pair's two
      // products commute) and was 2-10% slower over the whole backward.
      gemm_bf16(out, in, n, {dy, out, true}, {x, in, true}, dw, in, true, nullptr);
      if (db != nullptr) add_column_sums(dy, n, out, 0, out, db);
      return;
    }
  }
  if (const int64_t rows = token_split_rows(out, in, n); rows > 0) {
    gemm_dytx_token_split(dy, x, dw, n, in, out, rows);
    if (db != nullptr) add_column_sums(dy, n, out, 0, out, db);
    return;
  }
  // Split over weight rows and columns: each task owns its block of dw, no reduction needed;
  // the first column of tiles adds the bias gradient.
  for_grid(out, in, n, [&](int64_t o0, int64_t o1, int64_t i0, int64_t i1) {
    const int64_t no = o1 - o0;
    gemm_serial<T>(true, false, no, i1 - i0, n, T(1), dy + o0, out, x + i0, in, T(1),
                   dw + o0 * in + i0, in);
    if (db != nullptr && i0 == 0) add_column_sums(dy, n, out, o0, o1, db);
  });
}

bool gemm_blas_direct(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                      int threads) {
#ifdef AHA_WITH_OPENBLAS
  // OpenBLAS's own threads for this call only; back to one thread per call for the tiles.
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f, a, int(lda), b,
              int(ldb), beta, c, int(ldc));
  openblas_set_num_threads(1);
  return true;
#else
  (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb;
  (void)beta, (void)c, (void)ldc, (void)threads;
  return false;
#endif
}

void gemms_of_loop_task(int64_t tasks, const std::function<void()>& f) {
  if (tasks < 2 * machine_cores()) {
    f();
    return;
  }
  struct OneTile {  // restored on the way out, an exception's too
    bool before = std::exchange(t_one_tile, true);
    ~OneTile() { t_one_tile = before; }
  } scope;
  tbb::this_task_arena::isolate(f);
}

const char* gemm_backend() {
#ifdef AHA_WITH_OPENBLAS
  return "openblas";
#else
  return "eigen";
#endif
}

std::string gemm_blas_core() {
#ifdef AHA_WITH_OPENBLAS
  return openblas_get_corename();
#else
  return "eigen";
#endif
}

template void gemm_xwt<float>(const float*, const float*, const float*, float*, int64_t, int64_t,
                              int64_t, bool);
template void gemm_xwt<double>(const double*, const double*, const double*, double*, int64_t,
                               int64_t, int64_t, bool);
template void gemm_dyw<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, bool);
template void gemm_dyw<double>(const double*, const double*, double*, int64_t, int64_t, int64_t,
                               bool);
template void gemm_dytx<float>(const float*, const float*, float*, float*, int64_t, int64_t,
                               int64_t);
template void gemm_dytx<double>(const double*, const double*, double*, double*, int64_t, int64_t,
                                int64_t);

}  // namespace aha
