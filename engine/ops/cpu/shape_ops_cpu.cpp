// CPU references for permute and block copies (concat, slice).
#include <cstring>

#include "engine/ops/shape_ops.h"

namespace kiln::cpu {

template <class T>
void permute_forward(const T* x, T* y, const Shape& x_shape, const std::vector<int>& order) {
  // y has shape (x_shape[order[0]], x_shape[order[1]], ...); walk y's logical index
  // and read x at the matching coordinate.
  const int rank = x_shape.dim();
  const std::vector<int64_t> x_strides = x_shape.strides(Layout::nchw);
  std::vector<int64_t> y_dims(static_cast<size_t>(rank)), read_strides(static_cast<size_t>(rank));
  for (int k = 0; k < rank; ++k) {
    y_dims[k] = x_shape[order[k]];
    read_strides[k] = x_strides[order[k]];
  }
  const int64_t n = x_shape.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, at = 0;
    for (int k = rank - 1; k >= 0; --k) {
      at += (rest % y_dims[k]) * read_strides[k];
      rest /= y_dims[k];
    }
    y[i] = x[at];
  }
}

template <class T>
void copy_rows(const T* x, T* y, int64_t outer, int64_t x_inner, int64_t y_inner, int64_t x_offset, int64_t y_offset,
               int64_t length) {
  for (int64_t r = 0; r < outer; ++r)
    std::memcpy(y + r * y_inner + y_offset, x + r * x_inner + x_offset, static_cast<size_t>(length) * sizeof(T));
}

#define KILN_INSTANTIATE(T)                                                                          \
  template void permute_forward<T>(const T*, T*, const Shape&, const std::vector<int>&);           \
  template void copy_rows<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
