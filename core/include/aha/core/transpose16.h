// A 16 x 16 block of 4-byte values transposed in registers, for the kernels
// that pack operands k-major: four rounds, each swapping the off-diagonal D x D sub-blocks of
// every 2D x 2D block (D = 8, 4, 2, 1) with two two-source shuffles per pair of rows. 64
// shuffles instead of 256 scalar loads and stores.
#pragma once

#include <cstddef>
#include <utility>

namespace aha {

namespace transpose_detail {

// Rows a and b, D apart: lane J of the new a is a[J], or b[J - D] where bit D of J is set; of
// the new b, a[J + D], or b[J] where it is set.
template <int D, typename V, size_t... J>
inline V mix_lo(V a, V b, std::index_sequence<J...>) {
  return __builtin_shufflevector(a, b, ((J & D) == 0 ? int(J) : int(J) - D + 16)...);
}
template <int D, typename V, size_t... J>
inline V mix_hi(V a, V b, std::index_sequence<J...>) {
  return __builtin_shufflevector(a, b, ((J & D) == 0 ? int(J) + D : int(J) + 16)...);
}

template <int D, typename V>
inline void stage(V* r) {
  for (int i = 0; i < 16; ++i) {
    if ((i & D) != 0) continue;
    const V a = r[i], b = r[i + D];
    r[i] = mix_lo<D>(a, b, std::make_index_sequence<16>());
    r[i + D] = mix_hi<D>(a, b, std::make_index_sequence<16>());
  }
}

}  // namespace transpose_detail

// r[i][j] <- r[j][i] for the 16 rows r[0..16) of a 16-lane vector type V (float or uint32_t).
template <typename V>
inline void transpose16x16(V* r) {
  transpose_detail::stage<8>(r);
  transpose_detail::stage<4>(r);
  transpose_detail::stage<2>(r);
  transpose_detail::stage<1>(r);
}

}  // namespace aha
