// Softmax and log-softmax kernels: one block per row.
//
//   Shapes:  x, y, grad_output, grad_input: outer * size * inner elements; row
//            (o, i) is the `size` elements at o*size*inner + k*inner + i (see
//            softmax_geometry in engine/ops/softmax.h). inner = 1 for the last dim
//            of a row-major tensor and for dim 1 of an nhwc tensor.
//   Math:    m = max_k x_k, s = sum_k e^(x_k - m)
//            softmax y_k = e^(x_k - m) / s       log_softmax y_k = x_k - m - log s
//            backward: softmax      grad_input_k = y_k (g_k - sum_j g_j y_j)
//                      log_softmax  grad_input_k = g_k - e^(y_k) sum_j g_j
//   Saved:   y only.
//   Dtypes:  f32, f16, bf16 in memory; max, sums and exponentials in f32.
//   Memory:  forward reads x twice (max, then sum; the second read mostly hits L2
//            for rows of a few thousand) and writes y: ~3 * sizeof(T) per element;
//            backward reads y and g twice and writes grad_input: ~5 * sizeof(T).
//   Grid:    one block per row, 32..256 threads striding over the row; the block
//            reductions are in kernels/row_reduce.cuh.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/softmax.h"
#include "kernels/common.cuh"
#include "kernels/row_reduce.cuh"

namespace kiln::cuda {

namespace {

template <class T>
__global__ void softmax_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t size, int64_t inner,
                                       bool log) {
  const int64_t row = blockIdx.x;
  const int64_t base = (row / inner) * size * inner + row % inner;
  float local_max = -INFINITY;
  for (int64_t k = threadIdx.x; k < size; k += blockDim.x) local_max = fmaxf(local_max, to_float(x[base + k * inner]));
  const float max_value = block_max(local_max);
  float local_sum = 0.f;
  for (int64_t k = threadIdx.x; k < size; k += blockDim.x) local_sum += expf(to_float(x[base + k * inner]) - max_value);
  const float sum = block_sum(local_sum);  // >= 1: the max element contributes e^0
  const float log_sum = logf(sum), inverse_sum = 1.f / sum;
  for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
    const float shifted = to_float(x[base + k * inner]) - max_value;
    y[base + k * inner] = from_float<T>(log ? shifted - log_sum : expf(shifted) * inverse_sum);
  }
}

template <class T>
__global__ void softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ grad_output,
                                        T* __restrict__ grad_input, int64_t size, int64_t inner, bool log) {
  const int64_t row = blockIdx.x;
  const int64_t base = (row / inner) * size * inner + row % inner;
  float local_dot = 0.f;  // softmax: sum g_j y_j; log_softmax: sum g_j
  for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
    const float g = to_float(grad_output[base + k * inner]);
    local_dot += log ? g : g * to_float(y[base + k * inner]);
  }
  const float dot = block_sum(local_dot);
  for (int64_t k = threadIdx.x; k < size; k += blockDim.x) {
    const int64_t at = base + k * inner;
    const float g = to_float(grad_output[at]), out = to_float(y[at]);
    grad_input[at] = from_float<T>(log ? g - expf(out) * dot : out * (g - dot));
  }
}

void check_rows(const char* op, SoftmaxGeometry geometry) {
  // One block per row: the grid's x dimension allows 2^31 - 1 blocks.
  KILN_CHECK(geometry.outer * geometry.inner < (int64_t(1) << 31), op, ": ", geometry.outer * geometry.inner,
             " rows exceed the CUDA grid limit of 2^31 - 1");
}

}  // namespace

void softmax_forward(const Tensor& x, const Tensor& y, SoftmaxGeometry geometry, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  KILN_CHECK(x.dtype() == y.dtype() && x.layout() == y.layout() && x.numel() == y.numel(), op,
             ": x and y must match, got ", x.describe(), " and ", y.describe());
  const int64_t rows = geometry.outer * geometry.inner;
  if (rows == 0 || geometry.size == 0) return;
  check_rows(op, geometry);
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), op, {
    KILN_LAUNCH(static_cast<unsigned>(rows), row_block_threads(geometry.size), 0, ctx.stream(), softmax_forward_kernel<scalar_t>)(static_cast<const scalar_t*>(x.raw_data()),
                                                       static_cast<scalar_t*>(y.raw_data()), geometry.size,
                                                       geometry.inner, log);
  });
  KILN_CHECK_LAUNCH(op);
}

void softmax_backward(const Tensor& y, const Tensor& grad_output, const Tensor& grad_input,
                      SoftmaxGeometry geometry, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  KILN_CHECK(y.dtype() == grad_output.dtype() && y.layout() == grad_output.layout() &&
                 y.numel() == grad_output.numel() && y.numel() == grad_input.numel(),
             op, ": y, grad_output and grad_input must match, got ", y.describe(), ", ", grad_output.describe(),
             " and ", grad_input.describe());
  const int64_t rows = geometry.outer * geometry.inner;
  if (rows == 0 || geometry.size == 0) return;
  check_rows(op, geometry);
  Context& ctx = context_for(y);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(y.dtype(), op, {
    KILN_LAUNCH(static_cast<unsigned>(rows), row_block_threads(geometry.size), 0, ctx.stream(), softmax_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(y.raw_data()), static_cast<const scalar_t*>(grad_output.raw_data()),
        static_cast<scalar_t*>(grad_input.raw_data()), geometry.size, geometry.inner, log);
  });
  KILN_CHECK_LAUNCH(op);
}

}  // namespace kiln::cuda
