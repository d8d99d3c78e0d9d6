// bf16 matrix products with fp32 accumulation, and the process-wide matmul precision that
// routes the linear layers' GEMMs (tensor.h) to them.
//
// Numerics: both operands are rounded to bf16 (round to nearest even, bf16 subnormals flushed
// to zero as AVX512-BF16 does) and the products are summed in fp32. Under the avx512bf16 and
// emulated kernels each output is one fp32 accumulator that adds the exact products of k pairs
// in k order (for pair p: first a[2p+1]*b[2p+1], then a[2p]*b[2p], each add rounded once): the
// same bits on every machine. Under amx (the default where the CPU has AMX-BF16) the tile unit
// adds each block of 16 pairs, in k order, with its own internal order and rounding, so outputs
// differ from those in the last bits. Under every kernel an output does not depend on the other
// rows or columns, on tiling or on the thread count: the decode path and the training forward
// share one kernel, so sampling and scoring see the same logits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace aha {

enum class MatmulPrecision { fp32, bf16 };

// Set once before work starts (config key `precision`); fp32 is the default.
void set_matmul_precision(MatmulPrecision p);
// What products started on this thread use (fp32 inside an Fp32MatmulScope).
MatmulPrecision matmul_precision();
// The process-wide setting alone.
MatmulPrecision matmul_precision_setting();
// "fp32" / "bf16"; parse returns false for any other name.
const char* matmul_precision_name(MatmulPrecision p);
bool parse_matmul_precision(const char* name, MatmulPrecision* out);
// The same for a config key or flag: anything else fails with an error naming `key`.
MatmulPrecision matmul_precision_from(const std::string& name, const std::string& key);

// Restores the previous precision when it goes out of scope (tests, benchmarks).
class MatmulPrecisionScope {
 public:
  explicit MatmulPrecisionScope(MatmulPrecision p) : prev_(matmul_precision_setting()) {
    set_matmul_precision(p);
  }
  ~MatmulPrecisionScope() { set_matmul_precision(prev_); }
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  MatmulPrecision prev_;
};

// Products started on this thread run in fp32 while one lives, whatever the process-wide
// precision (tiles on other threads follow the caller's choice). For weights a model keeps in
// fp32 under bf16 training, as DeepSeek-V4 keeps its hyper-connection mixes.
class Fp32MatmulScope {
 public:
  Fp32MatmulScope();
  ~Fp32MatmulScope();
  Fp32MatmulScope(const Fp32MatmulScope&) = delete;
  Fp32MatmulScope& operator=(const Fp32MatmulScope&) = delete;

 private:
  bool prev_;
};

// The bf16 micro-kernel products run on: "amx" (Intel AMX tiles), "avx512bf16" (VDPBF16PS) or
// "emulated" (avx512bf16's bits at fp32 speed). The default is AHA_BF16_KERNEL when set, else the
// fastest the CPU runs.
const char* bf16_kernel();
// Chooses the kernel by name; fails naming `key` when the name is unknown or the CPU cannot run
// it. Set it before work starts: a model's outputs under amx differ in the last bits from the
// other two.
void set_bf16_kernel(const std::string& name, const std::string& key = "AHA_BF16_KERNEL");

// One operand of gemm_bf16: element (i, k) is p[i * ld + k], or p[k * ld + i] when trans.
struct MatRef {
  const float* p;
  int64_t ld;
  bool trans;
};

// c[i, j] = (accumulate ? c[i, j] : 0) + sum_k a(i, k) * b(j, k) (+ bias[j]); c row-major with
// rows every ldc values. Parallel over fixed tiles (TBB), or on the calling thread when serial.
// Under amx, an accumulating product without a bias starts the tile unit's sums from c over its
// whole panels of 16 columns (the backward's gradient sums: c is read once, by the unit), so
// their last bits are not those of the sums added to c after, as gemm_bf16_weight adds them.
void gemm_bf16(int64_t m, int64_t n, int64_t k, MatRef a, MatRef b, float* c, int64_t ldc,
               bool accumulate, const float* bias, bool serial = false);

// A right operand packed once for several products (the training attention's keys and values,
// one sequence's for all its blocks of queries): bf16_packed_words(n, k) words, written by
// pack_bf16_operand on the calling thread. gemm_bf16_packed is gemm_bf16 without a bias against
// the first n rows and first k values of such an operand packed over b_k values (k = b_k, or a
// multiple of 32 below it): the same bits as gemm_bf16 on those rows and values.
int64_t bf16_packed_words(int64_t n, int64_t k);
void pack_bf16_operand(MatRef b, int64_t n, int64_t k, uint32_t* words);
void gemm_bf16_packed(int64_t m, int64_t n, int64_t k, MatRef a, const uint32_t* b, int64_t b_k,
                      float* c, int64_t ldc, bool accumulate, bool serial = false);
// y[m, n] = (accumulate ? y : 0) + x[m, k] w[n, k]^T (+ bias): gemm_bf16 with w a weight (rows
// every k values), packed once per live WeightCache (weight_cache.h). The same values as gemm_bf16
// without accumulate; with it, the sums are added to y after, under every kernel: the forward's
// products, whose bits the decode path's add (a sum, then y + sum) must match.
void gemm_bf16_weight(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx,
                      const float* w, float* y, int64_t ldy, bool accumulate, const float* bias,
                      bool serial = false);

// The `size` values of w rounded to bf16 and back: cached while a WeightCache lives,
// otherwise written to *storage. For fp32 code that must multiply by the weights the bf16 kernel
// sees (MLA's absorbed decode).
const float* bf16_rounded(const float* w, int64_t size, std::vector<float>* storage);
// The same values in pack_bf16_blocks' blocks (size a multiple of 32; size / 2 floats): half the
// bytes to read, for the kernels that widen such rows (tensor.h's *_packed products).
const float* bf16_blocks(const float* w, int64_t size, std::vector<float>* storage);
// w's rows (cols values each, a multiple of 32) in groups of head + tail, as bf16 blocks: each
// group's first head rows as bf16_blocks has them, then its last tail rows (a multiple of 32)
// transposed, cols rows of tail values. As many bytes as bf16_blocks. For MLA's absorbed decode:
// W_UV_h's product then runs with its outputs in the lanes, as W_UK_h's does.
const float* bf16_blocks_tail_transposed(const float* w, int64_t groups, int64_t head,
                                         int64_t tail, int64_t cols, std::vector<float>* storage);

// Round to nearest even with subnormals flushed to zero, as the packing does (for references).
uint16_t to_bf16(float x);
float from_bf16(uint16_t h);

}  // namespace aha
