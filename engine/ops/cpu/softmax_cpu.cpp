// CPU references for softmax and log_softmax: one row at a time, sums in double so
// that the f32 reference is as exact as it can be.
#include <cmath>

#include "engine/ops/softmax.h"

namespace kiln::cpu {

template <class T> void softmax_forward(const T* x, T* y, SoftmaxGeometry geometry, bool log) {
  const int64_t outer = geometry.outer, size = geometry.size, inner = geometry.inner;
  const int64_t rows = outer * inner;
#pragma omp parallel for if (rows * size > 65536)
  for (int64_t row = 0; row < rows; ++row) {
    // Row `row` = (o, i): elements at base + k * inner.
    const int64_t base = (row / inner) * size * inner + row % inner;
    double max_value = -INFINITY;
    for (int64_t k = 0; k < size; ++k) max_value = std::max(max_value, static_cast<double>(x[base + k * inner]));
    double sum = 0;  // sum of e^(x - max): at least 1, so the log and the division are safe
    for (int64_t k = 0; k < size; ++k) sum += std::exp(x[base + k * inner] - max_value);
    const double log_sum = std::log(sum);
    for (int64_t k = 0; k < size; ++k) {
      const double shifted = x[base + k * inner] - max_value;
      y[base + k * inner] = static_cast<T>(log ? shifted - log_sum : std::exp(shifted) / sum);
    }
  }
}

template <class T>
void softmax_backward(const T* y, const T* grad_output, T* grad_input, SoftmaxGeometry geometry, bool log) {
  const int64_t outer = geometry.outer, size = geometry.size, inner = geometry.inner;
  const int64_t rows = outer * inner;
#pragma omp parallel for if (rows * size > 65536)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t base = (row / inner) * size * inner + row % inner;
    // softmax needs sum_j g_j y_j; log_softmax needs sum_j g_j.
    double dot = 0;
    for (int64_t k = 0; k < size; ++k) {
      const int64_t at = base + k * inner;
      dot += log ? static_cast<double>(grad_output[at]) : static_cast<double>(grad_output[at]) * y[at];
    }
    for (int64_t k = 0; k < size; ++k) {
      const int64_t at = base + k * inner;
      grad_input[at] = static_cast<T>(log ? grad_output[at] - std::exp(static_cast<double>(y[at])) * dot
                                          : y[at] * (grad_output[at] - dot));
    }
  }
}

#define KILN_INSTANTIATE(T)                                                       \
  template void softmax_forward<T>(const T*, T*, SoftmaxGeometry, bool);         \
  template void softmax_backward<T>(const T*, const T*, T*, SoftmaxGeometry, bool);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
