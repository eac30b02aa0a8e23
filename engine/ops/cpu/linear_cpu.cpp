// CPU reference for matmul and linear: Eigen GEMM on Eigen::Maps over the
// row-major buffers (no copies). A transposed operand is read through
// .transpose(), which Eigen folds into the product kernel instead of copying.
// Eigen parallelizes each product itself with OpenMP.
#include <Eigen/Dense>

#include "engine/ops/linear.h"

namespace kiln::cpu {

namespace {
template <class T> using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MatrixMap = Eigen::Map<RowMajorMatrix<T>>;
template <class T> using ConstMatrixMap = Eigen::Map<const RowMajorMatrix<T>>;
}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, const T* a, const T* b, T* c) {
  for (int64_t i = 0; i < batch; ++i) {
    // The stored shapes: a is (M, K), or (K, M) when it is to be transposed; likewise b.
    ConstMatrixMap<T> a_i(a + i * M * K, trans_a ? K : M, trans_a ? M : K);
    ConstMatrixMap<T> b_i(b + i * K * N, trans_b ? N : K, trans_b ? K : N);
    MatrixMap<T> c_i(c + i * M * N, M, N);
    // Four spellings of one product, because a transposed Map has a different Eigen type.
    if (!trans_a && !trans_b) c_i.noalias() = a_i * b_i;
    else if (!trans_a) c_i.noalias() = a_i * b_i.transpose();
    else if (!trans_b) c_i.noalias() = a_i.transpose() * b_i;
    else c_i.noalias() = a_i.transpose() * b_i.transpose();
  }
}

template <class T>
void add_row_bias(T* y, const T* bias, int64_t rows, int64_t cols) {
  MatrixMap<T> y_map(y, rows, cols);
  Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> bias_row(bias, cols);
  y_map.rowwise() += bias_row;
}

#define KILN_INSTANTIATE(T)                                                                        \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, int64_t, const T*, const T*, T*);   \
  template void add_row_bias<T>(T*, const T*, int64_t, int64_t);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
