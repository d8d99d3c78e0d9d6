// gemm_serial: one BLAS call with OpenBLAS at one thread (tensor.cpp sets that when the library
// loads), or Eigen's product on this thread.
#include "aha/core/gemm_serial.h"

#include <type_traits>

#include "aha/core/tensor.h"

#ifdef AHA_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace aha {

template <typename T>
void gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
#ifdef AHA_WITH_OPENBLAS
  const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb),
                beta, c, int(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb),
                beta, c, int(ldc));
  }
#else
  using Stride = Eigen::OuterStride<>;
  using CMap = Eigen::Map<const Mat<T>, Eigen::Unaligned, Stride>;
  CMap A(a, trans_a ? k : m, trans_a ? m : k, Stride(lda));
  CMap B(b, trans_b ? n : k, trans_b ? k : n, Stride(ldb));
  Eigen::Map<Mat<T>, Eigen::Unaligned, Stride> C(c, m, n, Stride(ldc));
  if (beta == T(0)) {
    C.setZero();
  } else if (beta != T(1)) {
    C *= beta;
  }
  if (trans_a && trans_b) {
    C.noalias() += alpha * A.transpose() * B.transpose();
  } else if (trans_a) {
    C.noalias() += alpha * A.transpose() * B;
  } else if (trans_b) {
    C.noalias() += alpha * A * B.transpose();
  } else {
    C.noalias() += alpha * A * B;
  }
#endif
}

template void gemm_serial<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                 int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_serial<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                  int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace aha
