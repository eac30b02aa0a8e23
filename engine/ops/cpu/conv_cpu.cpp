// CPU reference for conv2d: im2col + one GEMM per (image, group), as in Caffe.
//
// im2col unrolls every receptive field of one image (and one group of channels)
// into a column, so the convolution becomes one matrix product:
//
//   col (Cg*R*S, Ho*Wo):  col[(c*R + r)*S + s][i*Wo + j] = x[c, i*sh - ph + r*dh, j*sw - pw + s*dw]
//                         (0 where that pixel falls in the padding)
//   forward:          y_g (Kg, Ho*Wo)      = W_g (Kg, Cg*R*S)     * col
//   backward input:   dcol (Cg*R*S, Ho*Wo) = W_g^T                * dy_g,  then col2im(dcol) -> dx
//   backward weight:  dW_g (Kg, Cg*R*S)   += dy_g (Kg, Ho*Wo)     * col^T, summed over the batch
//
// with Cg = C/G and Kg = K/G channels per group (G = groups; depthwise is G = C = K).
// col2im is the adjoint of im2col: it scatters each column entry back onto its pixel,
// and pixels covered by several windows add up. Matrices are Eigen::Maps over the
// row-major buffers, so nothing is copied into Eigen types. OpenMP splits the batch;
// Eigen's own GEMM runs single-threaded inside that parallel region.
// Memory: one col buffer of Cg*R*S*Ho*Wo elements per thread.
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "engine/ops/conv.h"

namespace kiln::cpu {

namespace {

template <class T> using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MatrixMap = Eigen::Map<RowMajorMatrix<T>>;
template <class T> using ConstMatrixMap = Eigen::Map<const RowMajorMatrix<T>>;

// x: (Cg, H, W) of one image and group -> col: (Cg*R*S, Ho*Wo).
template <class T>
void im2col(const T* x, T* col, const Conv2dGeometry& g) {
  const int64_t P = g.Ho * g.Wo;
  for (int64_t c = 0; c < g.C_per_group(); ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        T* row = col + ((c * g.R + r) * g.S + s) * P;
        for (int64_t i = 0; i < g.Ho; ++i) {
          const int64_t h = i * g.stride_h - g.pad_h + r * g.dilation_h;
          for (int64_t j = 0; j < g.Wo; ++j) {
            const int64_t w = j * g.stride_w - g.pad_w + s * g.dilation_w;
            const bool inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
            row[i * g.Wo + j] = inside ? x[(c * g.H + h) * g.W + w] : T(0);
          }
        }
      }
}

// The adjoint of im2col: col (Cg*R*S, Ho*Wo) -> x (Cg, H, W) += each entry on its
// pixel. Entries that fell in the padding have no pixel and are dropped.
template <class T>
void col2im(const T* col, T* x, const Conv2dGeometry& g) {
  const int64_t P = g.Ho * g.Wo;
  for (int64_t c = 0; c < g.C_per_group(); ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        const T* row = col + ((c * g.R + r) * g.S + s) * P;
        for (int64_t i = 0; i < g.Ho; ++i) {
          const int64_t h = i * g.stride_h - g.pad_h + r * g.dilation_h;
          if (h < 0 || h >= g.H) continue;
          for (int64_t j = 0; j < g.Wo; ++j) {
            const int64_t w = j * g.stride_w - g.pad_w + s * g.dilation_w;
            if (w >= 0 && w < g.W) x[(c * g.H + h) * g.W + w] += row[i * g.Wo + j];
          }
        }
      }
}

// Threads worth starting for a loop over the batch: no more than there are images.
int batch_threads(int64_t N) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), N))); }

}  // namespace

template <class T>
void conv2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dGeometry& g) {
  const int64_t Cg = g.C_per_group(), Kg = g.K_per_group(), CRS = Cg * g.R * g.S, P = g.Ho * g.Wo;
#pragma omp parallel num_threads(batch_threads(g.N))
  {
    std::vector<T> col(static_cast<size_t>(CRS * P));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t group = 0; group < g.groups; ++group) {
        im2col(x + (n * g.C + group * Cg) * g.H * g.W, col.data(), g);
        ConstMatrixMap<T> weight_g(weight + group * Kg * CRS, Kg, CRS);
        ConstMatrixMap<T> cols(col.data(), CRS, P);
        MatrixMap<T> y_g(y + (n * g.K + group * Kg) * P, Kg, P);
        y_g.noalias() = weight_g * cols;
        if (bias) {  // one bias per output channel, broadcast over the Ho*Wo columns
          Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> bias_g(bias + group * Kg, Kg);
          y_g.colwise() += bias_g;
        }
      }
    }
  }
}

template <class T>
void conv2d_backward_input(const T* grad_output, const T* weight, T* grad_input, const Conv2dGeometry& g) {
  const int64_t Cg = g.C_per_group(), Kg = g.K_per_group(), CRS = Cg * g.R * g.S, P = g.Ho * g.Wo;
#pragma omp parallel num_threads(batch_threads(g.N))
  {
    std::vector<T> col(static_cast<size_t>(CRS * P));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      // col2im accumulates, so this image's gradient starts from zero (the output is overwritten).
      T* grad_input_n = grad_input + n * g.C * g.H * g.W;
      std::fill(grad_input_n, grad_input_n + g.C * g.H * g.W, T(0));
      for (int64_t group = 0; group < g.groups; ++group) {
        ConstMatrixMap<T> weight_g(weight + group * Kg * CRS, Kg, CRS);
        ConstMatrixMap<T> grad_output_g(grad_output + (n * g.K + group * Kg) * P, Kg, P);
        MatrixMap<T> grad_col(col.data(), CRS, P);
        grad_col.noalias() = weight_g.transpose() * grad_output_g;
        col2im(col.data(), grad_input_n + group * Cg * g.H * g.W, g);
      }
    }
  }
}

template <class T>
void conv2d_backward_weight(const T* grad_output, const T* x, T* grad_weight, const Conv2dGeometry& g) {
  const int64_t Cg = g.C_per_group(), Kg = g.K_per_group(), CRS = Cg * g.R * g.S, P = g.Ho * g.Wo;
  const int64_t weight_numel = g.K * CRS;
  // Every image adds to the same weight gradient: each thread sums its images into
  // its own buffer, and the buffers are added in thread order afterwards, so the
  // result is deterministic for a given thread count (no atomics, no critical race).
  const int threads = batch_threads(g.N);
  std::vector<T> partial(static_cast<size_t>(threads * weight_numel), T(0));
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> col(static_cast<size_t>(CRS * P));
    T* mine = partial.data() + omp_get_thread_num() * weight_numel;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t group = 0; group < g.groups; ++group) {
        im2col(x + (n * g.C + group * Cg) * g.H * g.W, col.data(), g);
        ConstMatrixMap<T> cols(col.data(), CRS, P);
        ConstMatrixMap<T> grad_output_g(grad_output + (n * g.K + group * Kg) * P, Kg, P);
        MatrixMap<T> grad_weight_g(mine + group * Kg * CRS, Kg, CRS);
        grad_weight_g.noalias() += grad_output_g * cols.transpose();
      }
    }
  }
  std::fill(grad_weight, grad_weight + weight_numel, T(0));
  for (int t = 0; t < threads; ++t)
    for (int64_t i = 0; i < weight_numel; ++i) grad_weight[i] += partial[t * weight_numel + i];
}

template <class T>
void conv2d_backward_bias(const T* grad_output, T* grad_bias, int64_t N, int64_t K, int64_t P) {
  for (int64_t k = 0; k < K; ++k) {
    double total = 0;  // a double accumulator keeps the f32 reference close to exact
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < P; ++p) total += grad_output[(n * K + k) * P + p];
    grad_bias[k] = static_cast<T>(total);
  }
}

#define KILN_INSTANTIATE(T)                                                                       \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const Conv2dGeometry&);       \
  template void conv2d_backward_input<T>(const T*, const T*, T*, const Conv2dGeometry&);          \
  template void conv2d_backward_weight<T>(const T*, const T*, T*, const Conv2dGeometry&);         \
  template void conv2d_backward_bias<T>(const T*, T*, int64_t, int64_t, int64_t);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
