// Sums and means over dimensions, and the broadcasting helpers autograd needs.
//
//   sum(x, dims, keepdim): out = sum of x over `dims`; backward: broadcast_to(g, x.shape)
//   mean(x, dims, keepdim): sum / (number of reduced elements)
//   broadcast_to(x, shape): copy x into a larger broadcast shape; backward: sum_to
//   sum_to(g, shape): sum g over the dims that broadcasting added (backward of broadcast)
#pragma once
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln {

Tensor sum(const Tensor& x);                                              // all elements -> shape ()
Tensor sum(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor sum_to(const Tensor& g, const Shape& shape);

namespace cpu {
// out[j] = sum over the reduced coordinates of x; `reduce[d]` marks reduced dims of
// x's shape; x row-major; out row-major in the keepdim shape.
template <class T> void sum_forward(const T* x, T* out, const Shape& x_shape, const std::vector<bool>& reduce);
// out (row-major, out_shape) = x read through broadcast strides (0 on broadcast dims).
template <class T>
void broadcast_copy(const T* x, T* out, const Shape& out_shape, const std::vector<int64_t>& x_strides);
}  // namespace cpu
namespace cuda {
void sum_forward(const Tensor& x, const Tensor& out, const std::vector<bool>& reduce);  // x row-major
void broadcast_copy(const Tensor& x, const Tensor& out, const std::vector<int64_t>& x_strides);  // out row-major
}  // namespace cuda

}  // namespace kiln
