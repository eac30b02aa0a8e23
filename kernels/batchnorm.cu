// Batch normalisation on CUDA: statistics, forward and backward (engine/ops/norm.h),
// for batch_norm and batch_norm_act (batch norm + relu/relu6 fused, docs/ops/fused.md).
//
// Math, per channel c over its M = N*H*W values (x seen as (N, C, L), L = H*W):
//   mean = sum x / M,  var = sum (x - mean)^2 / M,  invstd = rsqrt(var + eps)
//   y = (x - mean) * invstd * weight + bias
//   training also updates running_mean/var with momentum (running_var takes the
//   unbiased var * M / (M - 1)); eval reads mean/invstd from the running buffers.
//   backward: grad_bias = sum dy, grad_weight = sum dy * xhat,
//     training: grad_x = weight * invstd * (dy - sum dy / M - xhat * sum dy xhat / M)
//     eval:     grad_x = weight * invstd * dy
// Shapes: x, y, grad_output, grad_input (N, C, H, W) nchw/nhwc or (N, C), dtype
//   f32/f16/bf16; weight, bias, running stats, mean, invstd, grad_weight, grad_bias
//   (C) f32 (all arithmetic is f32; half types are only a storage format).
// Saved for backward (by the op): x, weight, mean, invstd; batch_norm_act also y.
// Fused activation f (NormActivation; identity for batch_norm): the forward kernel
//   stores f(z) instead of z; both backward kernels read y and use
//   gradient_through_activation(f, guided, y, dy) wherever they read dy. So the
//   fused op moves 2*sizeof(T) bytes per element forward (batch_norm + relu: 4) and
//   3 + 4 backward (batch_norm + relu: 3 for relu, then 2 + 3), and never allocates z.
// Kernels:
//   batch_norm_stats_kernel: one block per channel, two passes over the channel
//     (mean, then squared deviations) so var never suffers E[x^2] - E[x]^2
//     cancellation; reads x twice: 2*M*sizeof(T) bytes per channel.
//   batch_norm_forward_kernel: grid-stride over elements in x's memory order;
//     reads x, writes y: 2*sizeof(T) bytes per element (+ 4 per-channel f32 reads
//     that stay in L1/L2).
//   batch_norm_backward_reduce_kernel: one block per channel, sum dy and dy*xhat;
//     reads dy and x: 2*sizeof(T) per element.
//   batch_norm_backward_input_kernel: reads dy and x, writes dx: 3*sizeof(T).
// Layouts: every address is n*stride_n + c*stride_c + l*stride_l (ChannelView), so
//   one kernel serves nchw and nhwc. In nhwc the per-channel blocks read with stride
//   C (uncoalesced); that is correct but slower, and a channels-last-specific
//   reduction (a block over a tile of channels, as in Apex's welford kernels) is
//   where to go when a benchmark says it matters.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/norm.h"
#include "engine/tensor/factory.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ int64_t offset_of(const ChannelView& v, int64_t n, int64_t c, int64_t l) {
  return n * v.stride_n + c * v.stride_c + l * v.stride_l;
}

// (n, c, l) of the i-th element in the view's memory order: (n, c, l) for nchw,
// (n, l, c) for channels-last. Walking memory order keeps a warp's loads contiguous.
__device__ __forceinline__ void decode(const ChannelView& v, int64_t i, int64_t& n, int64_t& c, int64_t& l) {
  if (v.channels_last) {
    c = i % v.C;
    l = (i / v.C) % v.L;
    n = i / (v.C * v.L);
  } else {
    l = i % v.L;
    c = (i / v.L) % v.C;
    n = i / (v.C * v.L);
  }
}

// Sum of `value` over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. Warp shuffles, then one partial per warp in shared memory.
__device__ float block_sum(float value) {
  __shared__ float warp_sums[32];
  __shared__ float total;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
    if (lane == 0) total = value;
  }
  __syncthreads();
  const float result = total;
  __syncthreads();  // so a second block_sum call cannot overwrite `total` before all have read it
  return result;
}

// One block per channel (blockIdx.x = c). Launched with up to 1024 threads: the bound
// tells ptxas to fit the registers to that (else the launch could fail for lack of them).
template <class T>
__global__ void __launch_bounds__(1024) batch_norm_stats_kernel(const T* __restrict__ x, ChannelView xv, float momentum, float eps,
                                        float* running_mean, float* running_var, float* mean, float* invstd) {
  const int64_t c = blockIdx.x, count = xv.count();
  float partial = 0;
  for (int64_t m = threadIdx.x; m < count; m += blockDim.x)
    partial += to_float(x[offset_of(xv, m / xv.L, c, m % xv.L)]);
  const float batch_mean = block_sum(partial) / static_cast<float>(count);
  partial = 0;
  for (int64_t m = threadIdx.x; m < count; m += blockDim.x) {
    const float d = to_float(x[offset_of(xv, m / xv.L, c, m % xv.L)]) - batch_mean;
    partial += d * d;
  }
  const float squares = block_sum(partial);
  if (threadIdx.x == 0) {
    mean[c] = batch_mean;
    invstd[c] = rsqrtf(squares / static_cast<float>(count) + eps);
    if (running_mean) {
      running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * batch_mean;
      running_var[c] = (1.0f - momentum) * running_var[c] + momentum * squares / static_cast<float>(count - 1);
    }
  }
}

__global__ void batch_norm_eval_stats_kernel(const float* running_mean, const float* running_var, int64_t channels,
                                             float eps, float* mean, float* invstd) {
  KILN_GRID_STRIDE_LOOP(c, channels) {
    mean[c] = running_mean[c];
    invstd[c] = rsqrtf(running_var[c] + eps);
  }
}

// dL/dz at (n, c, l) from grad_output, through the fused activation if there is one.
template <class T>
__device__ __forceinline__ float grad_z(const T* __restrict__ grad_output, const ChannelView& gv,
                                        const ActivationGrad<T>& activation, int64_t n, int64_t c, int64_t l) {
  const float dy = to_float(grad_output[offset_of(gv, n, c, l)]);
  if (activation.y == nullptr) return dy;
  return gradient_through_activation(activation.activation, activation.guided,
                                     to_float(activation.y[offset_of(activation.yv, n, c, l)]), dy);
}

template <class T>
__global__ void batch_norm_forward_kernel(const T* __restrict__ x, ChannelView xv, const float* mean,
                                          const float* invstd, const float* weight, const float* bias,
                                          NormActivation activation, T* __restrict__ y, ChannelView yv) {
  KILN_GRID_STRIDE_LOOP(i, xv.N * xv.C * xv.L) {
    int64_t n, c, l;
    decode(xv, i, n, c, l);
    const float scale = invstd[c] * (weight ? weight[c] : 1.0f);
    const float shift = (bias ? bias[c] : 0.0f) - mean[c] * scale;
    const float z = to_float(x[offset_of(xv, n, c, l)]) * scale + shift;
    y[offset_of(yv, n, c, l)] = from_float<T>(apply_norm_activation(activation, z));
  }
}

// One block per channel: sum_dy[c] = sum dy, sum_dy_xhat[c] = sum dy * xhat. Up to
// 1024 threads, as batch_norm_stats_kernel.
template <class T>
__global__ void __launch_bounds__(1024) batch_norm_backward_reduce_kernel(const T* __restrict__ grad_output, ChannelView gv,
                                                  ActivationGrad<T> activation, const T* __restrict__ x,
                                                  ChannelView xv, const float* mean, const float* invstd,
                                                  float* sum_dy, float* sum_dy_xhat) {
  const int64_t c = blockIdx.x, count = xv.count();
  const float channel_mean = mean[c], channel_invstd = invstd[c];
  float partial_dy = 0, partial_dy_xhat = 0;
  for (int64_t m = threadIdx.x; m < count; m += blockDim.x) {
    const int64_t n = m / xv.L, l = m % xv.L;
    const float dy = grad_z(grad_output, gv, activation, n, c, l);
    partial_dy += dy;
    partial_dy_xhat += dy * (to_float(x[offset_of(xv, n, c, l)]) - channel_mean) * channel_invstd;
  }
  const float total_dy = block_sum(partial_dy);
  const float total_dy_xhat = block_sum(partial_dy_xhat);
  if (threadIdx.x == 0) {
    sum_dy[c] = total_dy;
    sum_dy_xhat[c] = total_dy_xhat;
  }
}

template <class T>
__global__ void batch_norm_backward_input_kernel(const T* __restrict__ grad_output, ChannelView gv,
                                                 ActivationGrad<T> activation, const T* __restrict__ x,
                                                 ChannelView xv, const float* mean, const float* invstd,
                                                 const float* weight, const float* sum_dy, const float* sum_dy_xhat,
                                                 bool training, T* __restrict__ grad_input, ChannelView giv) {
  const float inverse_count = 1.0f / static_cast<float>(xv.count());
  KILN_GRID_STRIDE_LOOP(i, giv.N * giv.C * giv.L) {
    int64_t n, c, l;
    decode(giv, i, n, c, l);
    const float scale = invstd[c] * (weight ? weight[c] : 1.0f);
    float dy = grad_z(grad_output, gv, activation, n, c, l);
    if (training) {  // remove the parts of dy that flow through mean and var
      const float xhat = (to_float(x[offset_of(xv, n, c, l)]) - mean[c]) * invstd[c];
      dy -= (sum_dy[c] + xhat * sum_dy_xhat[c]) * inverse_count;
    }
    grad_input[offset_of(giv, n, c, l)] = from_float<T>(scale * dy);
  }
}

const float* f32_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
float* f32_out_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

// Threads for a per-channel block: enough to cover small channels without idling
// most of a 1024-thread block, always a multiple of 32 for block_sum.
int reduce_threads(int64_t count) { return count >= 1024 ? 1024 : (count >= 256 ? 256 : 64); }

}  // namespace

void batch_norm_stats(const Tensor& x, bool training, double momentum, double eps, const Tensor& running_mean,
                      const Tensor& running_var, const Tensor& mean, const Tensor& invstd) {
  Context& ctx = context_for(x);
  set_device(ctx);
  const ChannelView xv = channel_view(x);
  if (!training) {
    KILN_LAUNCH(grid_size(xv.C), kThreads, 0, ctx.stream(), batch_norm_eval_stats_kernel)(
        running_mean.data<float>(), running_var.data<float>(), xv.C, static_cast<float>(eps), mean.data<float>(),
        invstd.data<float>());
    KILN_CHECK_LAUNCH("batch_norm_eval_stats");
    return;
  }
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "batch_norm", {
    KILN_LAUNCH(static_cast<unsigned>(xv.C), reduce_threads(xv.count()), 0, ctx.stream(), batch_norm_stats_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), xv, static_cast<float>(momentum), static_cast<float>(eps),
        f32_out_or_null(running_mean), f32_out_or_null(running_var), mean.data<float>(), invstd.data<float>());
  });
  KILN_CHECK_LAUNCH("batch_norm_stats");
}

void batch_norm_forward(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                        const Tensor& bias, NormActivation activation, const Tensor& y) {
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "batch_norm", {
    KILN_LAUNCH(grid_size(x.numel()), kThreads, 0, ctx.stream(), batch_norm_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), channel_view(x), mean.data<float>(), invstd.data<float>(),
        f32_or_null(weight), f32_or_null(bias), activation, static_cast<scalar_t*>(y.raw_data()), channel_view(y));
  });
  KILN_CHECK_LAUNCH("batch_norm_forward");
}

void batch_norm_backward(const Tensor& grad_output, NormActivation activation, GradientRule rule,
                         const Tensor& output, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                         const Tensor& weight, bool training, const Tensor& grad_input, const Tensor& grad_weight,
                         const Tensor& grad_bias) {
  Context& ctx = context_for(x);
  set_device(ctx);
  const ChannelView xv = channel_view(x), gv = channel_view(grad_output);
  // The sums go straight into grad_bias / grad_weight when those are wanted, and
  // into scratch tensors otherwise (training's grad_input needs both).
  const TensorOptions f32_options{DType::f32, x.device(), Layout::nchw};
  const Tensor sum_dy = grad_bias.defined() ? grad_bias : empty(Shape{xv.C}, f32_options);
  const Tensor sum_dy_xhat = grad_weight.defined() ? grad_weight : empty(Shape{xv.C}, f32_options);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "batch_norm_backward", {
    const auto* dy = static_cast<const scalar_t*>(grad_output.raw_data());
    const auto* x_data = static_cast<const scalar_t*>(x.raw_data());
    ActivationGrad<scalar_t> through;  // identity unless batch_norm_act
    if (activation != NormActivation::identity)
      through = {activation, rule == GradientRule::guided, static_cast<const scalar_t*>(output.raw_data()),
                 channel_view(output)};
    if (training || grad_weight.defined() || grad_bias.defined()) {  // eval's grad_input needs no sums
      KILN_LAUNCH(static_cast<unsigned>(xv.C), reduce_threads(xv.count()), 0, ctx.stream(), batch_norm_backward_reduce_kernel<scalar_t>)(
              dy, gv, through, x_data, xv, mean.data<float>(), invstd.data<float>(), sum_dy.data<float>(),
              sum_dy_xhat.data<float>());
      KILN_CHECK_LAUNCH("batch_norm_backward_reduce");
    }
    if (grad_input.defined()) {
      KILN_LAUNCH(grid_size(x.numel()), kThreads, 0, ctx.stream(), batch_norm_backward_input_kernel<scalar_t>)(
          dy, gv, through, x_data, xv, mean.data<float>(), invstd.data<float>(), f32_or_null(weight),
          sum_dy.data<float>(), sum_dy_xhat.data<float>(), training, static_cast<scalar_t*>(grad_input.raw_data()),
          channel_view(grad_input));
      KILN_CHECK_LAUNCH("batch_norm_backward_input");
    }
  });
}

}  // namespace kiln::cuda
