// Softmax and log-softmax over one dimension (docs/ops/softmax_loss.md).
//
//   softmax(x)_k     = e^(x_k - m) / sum_j e^(x_j - m),   m = max_j x_j (for stability)
//   log_softmax(x)_k = x_k - m - log(sum_j e^(x_j - m))
//   backward (y = output, g = grad_output, sums over the softmax dimension):
//     softmax:     grad_input = y * (g - sum_j g_j y_j)
//     log_softmax: grad_input = g - e^y * sum_j g_j
//   Saved: the output y only.
//
// Any shape and layout; the output has x's layout. A dense tensor read along `dim`
// is `outer` independent rows of `size` elements spaced `inner` apart in memory,
// inner = the memory stride of dim (1 for the last dim of a row-major tensor, and
// for the channel dim of an nhwc tensor), outer = numel / (size * inner). So the
// kernels need no layout conversion, only those three numbers.
#pragma once
#include <cstdint>

#include "engine/tensor/tensor.h"

namespace kiln {

Tensor softmax(const Tensor& x, int dim = -1);
Tensor log_softmax(const Tensor& x, int dim = -1);

// Returns grad_input for y = softmax(x, dim) (or log_softmax when `log`), shaped
// and laid out like y (the tape accumulates it).
Tensor softmax_backward(const Tensor& y, const Tensor& grad_output, int dim, bool log);

// The (outer, size, inner) view of t along dim, described above.
struct SoftmaxGeometry {
  int64_t outer = 1, size = 1, inner = 1;
};
SoftmaxGeometry softmax_geometry(const Tensor& t, int dim);

namespace cpu {
// x, y: outer * size * inner elements; row r = (o, i) holds x[o*size*inner + k*inner + i], k < size.
template <class T> void softmax_forward(const T* x, T* y, SoftmaxGeometry geometry, bool log);
template <class T>
void softmax_backward(const T* y, const T* grad_output, T* grad_input, SoftmaxGeometry geometry, bool log);
}  // namespace cpu
namespace cuda {
void softmax_forward(const Tensor& x, const Tensor& y, SoftmaxGeometry geometry, bool log);
void softmax_backward(const Tensor& y, const Tensor& grad_output, const Tensor& grad_input,
                      SoftmaxGeometry geometry, bool log);
}  // namespace cuda

}  // namespace kiln
