// Inverted dropout (torch.nn.functional.dropout).
//
//   keep_i = uniform01(seed, i) >= p          (engine/core/rng.h: a pure function of (seed, i))
//   y_i    = keep_i ? x_i / (1 - p) : 0       when training and p > 0; y = x otherwise
//   backward: grad_input_i = keep_i ? grad_output_i / (1 - p) : 0
//
// i is the *logical* row-major index of the element (for an nhwc tensor, the index
// it would have in nchw order), so the mask depends on neither the device nor the
// layout: the CPU and CUDA backends, and nchw and nhwc tensors, drop the same
// elements. Nothing is saved for backward: the mask is recomputed from (seed, i),
// so the backward is the same masking applied to grad_output. p = 1 drops
// everything (y = 0), as torch does.
#pragma once
#include <cstdint>

#include "engine/core/rng.h"
#include "engine/tensor/tensor.h"

namespace kiln {

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed);
// Returns grad_input for y = dropout(x, p, true, seed) (a new tensor; the tape accumulates it).
Tensor dropout_backward(const Tensor& grad_output, double p, uint64_t seed);

// Where element `index` of memory sits in logical row-major order. For nchw that is
// the index itself; for nhwc memory (N, H, W, C) it is the nchw index of the same
// (n, c, h, w). Used by the CPU loop and the CUDA kernel alike.
struct DropoutIndexing {
  bool nhwc = false;
  int64_t C = 1, H = 1, W = 1;  // only read when nhwc
  KILN_HOST_DEVICE int64_t logical_index(int64_t index) const {
    if (!nhwc) return index;
    const int64_t c = index % C, w = (index / C) % W, h = (index / (C * W)) % H, n = index / (C * W * H);
    return ((n * C + c) * H + h) * W + w;
  }
};
DropoutIndexing dropout_indexing(const Tensor& t);

namespace cpu {
// y_i = keep(seed, logical_index(i)) ? x_i * scale : 0, for the n elements of x in memory order.
template <class T>
void dropout_forward(const T* x, T* y, int64_t n, float p, double scale, uint64_t seed, DropoutIndexing indexing);
}  // namespace cpu
namespace cuda {
void dropout_forward(const Tensor& x, const Tensor& y, float p, double scale, uint64_t seed,
                     DropoutIndexing indexing);
}  // namespace cuda

}  // namespace kiln
