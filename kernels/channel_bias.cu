// Per-channel bias for conv2d and linear, forward and backward.
//
// A tensor is read as (N, K, P) (nchw, or a (N, K) matrix with P = 1) or as
// (N, P, K) (nhwc), where K is the channel and P = Ho*Wo the pixel:
//   forward:   y[n, k, p] += bias[k]                       reads and writes y, reads bias
//   backward:  grad_bias[k] = sum_{n, p} grad_output[n, k, p]
// Bytes moved: forward 2*sizeof(T) per element of y; backward sizeof(T) per element.
// Dtypes: f32, f16, bf16; arithmetic and the sum in f32, stored in the tensor's dtype.
//
// Backward uses one block per channel: its threads stride over the N*P values of
// that channel and combine them with a shared-memory tree. In nchw those values
// are contiguous runs of P; in nhwc they are K apart (uncoalesced), which is fine
// for a bias whose sum is tiny next to the convolution it follows.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/conv.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

// Offset of (n, k, p) in a tensor read as (N, K, P) or, when channels_last, as (N, P, K).
__device__ __forceinline__ int64_t channel_offset(int64_t n, int64_t k, int64_t p, int64_t K, int64_t P,
                                                  bool channels_last) {
  return channels_last ? (n * P + p) * K + k : (n * K + k) * P + p;
}

template <class T>
__global__ void channel_bias_forward_kernel(const T* bias, T* y, int64_t total, int64_t K, int64_t P,
                                            bool channels_last) {
  KILN_GRID_STRIDE_LOOP(i, total) {
    // The channel of flat element i: innermost in nhwc, the middle index in nchw.
    const int64_t k = channels_last ? i % K : (i / P) % K;
    y[i] = from_float<T>(to_float(y[i]) + to_float(bias[k]));
  }
}

template <class T>
__global__ void channel_bias_backward_kernel(const T* grad_output, T* grad_bias, int64_t N, int64_t K, int64_t P,
                                             bool channels_last) {
  __shared__ float partial[kThreads];
  const int64_t k = blockIdx.x;
  float total = 0.0f;
  for (int64_t j = threadIdx.x; j < N * P; j += blockDim.x)
    total += to_float(grad_output[channel_offset(j / P, k, j % P, K, P, channels_last)]);
  partial[threadIdx.x] = total;
  __syncthreads();
  // Tree reduction: halve the active threads each step (kThreads is a power of two).
  for (unsigned stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) grad_bias[k] = from_float<T>(partial[0]);  // overwrite: a fresh gradient
}

}  // namespace

void channel_bias_forward(const Tensor& bias, const Tensor& y, int64_t N, int64_t K, int64_t P, bool channels_last) {
  KILN_CHECK(bias.numel() == K && y.numel() == N * K * P && bias.dtype() == y.dtype(),
             "channel_bias_forward: bias ", bias.describe(), " does not fit y ", y.describe());
  Context& ctx = context_for(y);
  set_device(ctx);
  const int64_t total = y.numel();
  if (total == 0) return;
  KILN_DISPATCH_CUDA_FLOAT(y.dtype(), "channel_bias_forward", {
    KILN_LAUNCH(grid_size(total), kThreads, 0, ctx.stream(), channel_bias_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(bias.raw_data()), static_cast<scalar_t*>(y.raw_data()), total, K, P,
        channels_last);
  });
  KILN_CHECK_LAUNCH("channel_bias_forward");
}

void channel_bias_backward(const Tensor& grad_output, const Tensor& grad_bias, int64_t N, int64_t K, int64_t P,
                           bool channels_last) {
  KILN_CHECK(grad_bias.numel() == K && grad_output.numel() == N * K * P && grad_bias.dtype() == grad_output.dtype(),
             "channel_bias_backward: grad_bias ", grad_bias.describe(), " does not fit grad_output ",
             grad_output.describe());
  KILN_CHECK(K <= 2147483647LL, "channel_bias_backward: K = ", K, " channels exceed the grid limit");
  Context& ctx = context_for(grad_output);
  set_device(ctx);
  if (K == 0) return;
  KILN_DISPATCH_CUDA_FLOAT(grad_output.dtype(), "channel_bias_backward", {
    KILN_LAUNCH(static_cast<unsigned>(K), kThreads, 0, ctx.stream(), channel_bias_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(grad_output.raw_data()), static_cast<scalar_t*>(grad_bias.raw_data()), N, K, P,
        channels_last);
  });
  KILN_CHECK_LAUNCH("channel_bias_backward");
}

}  // namespace kiln::cuda
