// Storage dtypes of checkpoints and their conversions to and from float.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

namespace aha {

// kF8E4M3 ("F8_E4M3"): FP8 E4M3FN codes (aha/core/fp8.h); convert_to decodes them unscaled.
enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kU8, kF8E4M3 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // safetensors spelling: "F32", "BF16", ...
// Throws aha::Error for a dtype aha does not read.
DType dtype_from_name(const std::string& name);

inline float bf16_to_float(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }
// Round to nearest even; NaN stays NaN.
inline uint16_t float_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

// Converts n elements of `src` (stored as `t`, little-endian, possibly unaligned) to T.
template <typename T>
void convert_to(DType t, const uint8_t* src, size_t n, T* dst);

}  // namespace aha
