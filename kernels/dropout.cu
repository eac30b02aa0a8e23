// Dropout kernel: y_i = keep_i ? x_i * scale : 0, scale = 1 / (1 - p).
//
//   Shapes:  x, y: n elements in one layout, walked in memory order.
//   Mask:    keep_i = uniform01(seed, logical_index(i)) >= p, the same host/device
//            function as the CPU reference (engine/core/rng.h, engine/ops/dropout.h),
//            so CPU and CUDA drop identical elements for the same seed.
//   Saved:   nothing; the backward calls this kernel again on grad_output.
//   Dtypes:  f32, f16, bf16 in memory; the scaling in f32.
//   Memory:  reads x, writes y: 2 * sizeof(T) bytes per element. The SplitMix64
//            hash is ~10 integer ops per element: still bandwidth-bound on an H100.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/dropout.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

template <class T>
__global__ void dropout_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, float p, float scale,
                                       uint64_t seed, DropoutIndexing indexing) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const bool keep = uniform01(seed, static_cast<uint64_t>(indexing.logical_index(i))) >= p;
    y[i] = from_float<T>(keep ? to_float(x[i]) * scale : 0.f);
  }
}

}  // namespace

void dropout_forward(const Tensor& x, const Tensor& y, float p, double scale, uint64_t seed,
                     DropoutIndexing indexing) {
  KILN_CHECK(x.dtype() == y.dtype() && x.layout() == y.layout() && x.numel() == y.numel(),
             "dropout: x and y must match, got ", x.describe(), " and ", y.describe());
  const int64_t n = x.numel();
  if (n == 0) return;
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "dropout", {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), dropout_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), static_cast<scalar_t*>(y.raw_data()), n, p,
        static_cast<float>(scale), seed, indexing);
  });
  KILN_CHECK_LAUNCH("dropout");
}

}  // namespace kiln::cuda
