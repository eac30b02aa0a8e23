// CPU references for reductions: plain loops over the logical index.
#include "engine/ops/reduce.h"

namespace kiln::cpu {

template <class T>
void sum_forward(const T* x, T* out, const Shape& x_shape, const std::vector<bool>& reduce) {
  // Output strides for the keepdim shape: reduced dims have size 1 and stride 0.
  const int rank = x_shape.dim();
  std::vector<int64_t> out_strides(static_cast<size_t>(rank), 0);
  int64_t step = 1, out_numel = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (reduce[d]) continue;
    out_strides[d] = step;
    step *= x_shape[d];
  }
  out_numel = step;
  std::vector<double> acc(static_cast<size_t>(out_numel), 0.0);  // accumulate in double: exact enough for f32 tests
  const int64_t n = x_shape.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, at = 0;
    for (int d = rank - 1; d >= 0; --d) {
      at += (rest % x_shape[d]) * out_strides[d];
      rest /= x_shape[d];
    }
    acc[at] += static_cast<double>(x[i]);
  }
  for (int64_t j = 0; j < out_numel; ++j) out[j] = static_cast<T>(acc[j]);
}

template <class T>
void broadcast_copy(const T* x, T* out, const Shape& out_shape, const std::vector<int64_t>& x_strides) {
  const int64_t n = out_shape.numel();
  const int rank = out_shape.dim();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, at = 0;
    for (int d = rank - 1; d >= 0; --d) {
      at += (rest % out_shape[d]) * x_strides[d];
      rest /= out_shape[d];
    }
    out[i] = x[at];
  }
}

template void sum_forward<float>(const float*, float*, const Shape&, const std::vector<bool>&);
template void sum_forward<double>(const double*, double*, const Shape&, const std::vector<bool>&);
template void broadcast_copy<float>(const float*, float*, const Shape&, const std::vector<int64_t>&);
template void broadcast_copy<double>(const double*, double*, const Shape&, const std::vector<int64_t>&);

}  // namespace kiln::cpu
