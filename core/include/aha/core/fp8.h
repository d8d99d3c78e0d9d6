// FP8 E4M3 (`float8_e4m3fn`) codec and DeepSeek-V3-style block quantization of [n, k] matrices:
// one float scale per block_n x block_k block (ragged at the right and bottom edges), stored
// as `weight_scale_inv` and applied by multiplication (W ~ q * scale).
#pragma once

#include <cstdint>

namespace aha {

// E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits; max +-448, min normal 2^-6,
// subnormal step 2^-9; no infinities; S.1111.111 is NaN.
constexpr float kE4m3Max = 448.0f;

// Exact: every E4M3 value is a float (a 256-entry table).
float e4m3_to_float(uint8_t bits);
// Round to nearest, ties to even, exactly as torch's `x.to(torch.float8_e4m3fn)`: that cast
// does not saturate. |x| <= 464 (the midpoint between 448 and the NaN code) rounds to at most
// 448; |x| > 464, +-inf and NaN give NaN (0x7F with the sign of x).
uint8_t float_to_e4m3(float x);

struct Fp8BlockFormat {
  int block_n = 128;   // rows of W per scale
  int block_k = 128;   // columns of W per scale
  bool ue8m0 = false;  // scales are powers of two (`scale_fmt: "ue8m0"`, V3.1/V3.2)
};

// Rows and columns of the scale tensor of an [n, k] weight: ceil(n / block_n), ceil(k / block_k).
int64_t fp8_scale_rows(int64_t n, const Fp8BlockFormat& f);
int64_t fp8_scale_cols(int64_t k, const Fp8BlockFormat& f);

// dst[i, j] = e4m3(codes[i, j]) * scale_inv[i / block_n, j / block_k], rounded once to T.
template <typename T>
void fp8_dequantize(const uint8_t* codes, const float* scale_inv, int64_t n, int64_t k,
                    const Fp8BlockFormat& f, T* dst);

// Per block: amax = max |w|; scale = amax / 448 (at least FLT_MIN, so a zero block has a finite
// scale); with ue8m0 the smallest power of two 2^e for which the block's amax still rounds to at
// most 448 (amax <= 464 * 2^e). codes = e4m3(w / scale). Quantizing the dequantized result again
// gives the same codes and scales. Throws aha::Error on a non-finite weight.
template <typename T>
void fp8_quantize(const T* w, int64_t n, int64_t k, const Fp8BlockFormat& f, uint8_t* codes,
                  float* scale_inv);

}  // namespace aha
