// clip_grad_norm on the device (engine/train/grad_clip.h), with no host read:
//   1. squared_norm: one multi-tensor launch per chunk of the gradients; block b
//      writes the sum of x^2 over its 65536-element chunk to partials[b]
//   2. finish: one block sums the partials in f64 in a fixed order (the result does
//      not depend on scheduling), norm = sqrt(sum) in f64 (returned as an f64 0-d
//      tensor, the CPU's dtype), coefficient = min(1, max_norm / (norm + 1e-6))
//   3. scale: one multi-tensor launch per chunk multiplies every gradient by the
//      coefficient; its blocks return at once when the coefficient is 1 (no clipping)
// Per-chunk sums in f32 (torch's opmath for f32/f16/bf16 gradients), their total in f64.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "engine/train/grad_clip.h"
#include "kernels/common.cuh"
#include "kernels/multi_tensor.cuh"

namespace kiln::train::cuda {

template <class T>
struct SquaredNormFunctor {
  float* partials;  // this list's first block's slot; indexed by the block's number in the plan

  __device__ void operator()(void* const* addresses, int64_t begin, int64_t end,
                             const kiln::cuda::MultiTensorBlockInfo& info) const {
    const T* x = static_cast<const T*>(addresses[0]);
    float sum = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const float v = kiln::cuda::to_float(x[i]);
      sum += v * v;
    }
    sum = kiln::cuda::block_reduce_sum(sum);
    if (threadIdx.x == 0) partials[info.plan_block] = sum;
  }
};

constexpr int kFinishThreads = 1024;

// Adds the partials in f64 (each thread a strided run, then a shared-memory tree: a
// fixed order), so the norm is the CPU's f64 norm up to the f32 rounding of the
// per-chunk sums. Launched with exactly kFinishThreads threads.
__global__ void __launch_bounds__(kFinishThreads)
    finish_norm_kernel(const float* partials, int count, double max_norm, double* norm, float* coefficient) {
  __shared__ double sums[kFinishThreads];
  double sum = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) sum += static_cast<double>(partials[i]);
  sums[threadIdx.x] = sum;
  __syncthreads();
  for (unsigned stride = kFinishThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) sums[threadIdx.x] += sums[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double total = sqrt(sums[0]);
    *norm = total;
    const double c = max_norm / (total + 1e-6);
    *coefficient = c < 1.0 ? static_cast<float>(c) : 1.0f;
  }
}

template <class T>
struct ScaleFunctor {
  const float* coefficient;

  __device__ void operator()(void* const* addresses, int64_t begin, int64_t end,
                             const kiln::cuda::MultiTensorBlockInfo&) const {
    const float c = *coefficient;
    if (c >= 1.0f) return;  // not clipping: x * 1 == x
    T* x = static_cast<T*>(addresses[0]);
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
      x[i] = kiln::cuda::from_float<T>(kiln::cuda::to_float(x[i]) * c);
  }
};

Tensor clip_grad_norm(const std::vector<Tensor>& grads, double max_norm) {
  const Device device = grads.front().device();
  kiln::cuda::Context& ctx = kiln::cuda::context_for(grads.front());
  kiln::cuda::set_device(ctx);
  const std::vector<std::vector<Tensor>> lists = optim::split_by_device_and_dtype(grads);
  // One partial sum per chunk of every gradient: exactly the blocks the plans launch.
  int64_t chunks = 0;
  for (const Tensor& g : grads) chunks += (g.numel() + optim::kMultiTensorChunk - 1) / optim::kMultiTensorChunk;
  const Tensor partials = empty({std::max<int64_t>(chunks, 1)}, {DType::f32, device});
  const Tensor norm = empty(Shape{}, {DType::f64, device});  // f64, as the CPU returns it
  const Tensor coefficient = empty(Shape{}, {DType::f32, device});
  std::vector<std::vector<void*>> addresses(lists.size());
  std::vector<std::vector<int64_t>> sizes(lists.size());
  for (size_t l = 0; l < lists.size(); ++l)
    for (const Tensor& g : lists[l]) {
      addresses[l].push_back(g.raw_data());
      sizes[l].push_back(g.numel());
    }
  int64_t written = 0;
  for (size_t l = 0; l < lists.size(); ++l) {
    const std::vector<void*> one_list[1] = {addresses[l]};
    float* slots = static_cast<float*>(partials.raw_data()) + written;
    KILN_DISPATCH_CUDA_FLOAT(lists[l].front().dtype(), "clip_grad_norm", {
      written += kiln::cuda::multi_tensor_apply<1>(one_list, sizes[l], SquaredNormFunctor<scalar_t>{slots},
                                                   ctx.stream(), "clip_grad_norm (sum of squares)");
    });
  }
  KILN_CHECK(written == chunks, "clip_grad_norm: the plans launched ", written, " blocks for ", chunks, " chunks");
  KILN_LAUNCH(1, kFinishThreads, 0, ctx.stream(), finish_norm_kernel)(static_cast<const float*>(partials.raw_data()),
                                                            static_cast<int>(written), max_norm,
                                                            static_cast<double*>(norm.raw_data()),
                                                            static_cast<float*>(coefficient.raw_data()));
  KILN_CHECK_LAUNCH("clip_grad_norm (finish)");
  for (size_t l = 0; l < lists.size(); ++l) {
    const std::vector<void*> one_list[1] = {addresses[l]};
    const float* c = static_cast<const float*>(coefficient.raw_data());
    KILN_DISPATCH_CUDA_FLOAT(lists[l].front().dtype(), "clip_grad_norm", {
      kiln::cuda::multi_tensor_apply<1>(one_list, sizes[l], ScaleFunctor<scalar_t>{c}, ctx.stream(),
                                        "clip_grad_norm (scale)");
    });
  }
  return norm;
}

}  // namespace kiln::train::cuda
