// Sums over dimensions, and broadcast copies, on the GPU (engine/ops/reduce.h).
//
// sum_forward:  out[j] = sum over the reduced coordinates r of x[j, r]
//   x: row-major, any shape; reduce[d] marks the dims summed over; out: row-major,
//   x's shape with the reduced dims set to 1 (keepdim). Accumulation is in f32
//   for f32/f16/bf16 (the only cuda dtypes), so bf16 inputs lose nothing extra.
//   Bytes moved per element: sizeof(T) read; out is small.
//
//   The dims are first simplified: size-1 dims dropped and neighbouring dims with
//   the same role merged, so (N, C, H, W) summed over (0, 2, 3) becomes
//   (N | C kept | H*W). Then one of three kernels runs:
//   - everything reduced (the loss, a mean): two passes. Pass 1: each of up to
//     1024 blocks sums a grid-stride share into one float in the workspace;
//     pass 2: one block sums those. Deterministic: no atomics, the same order
//     every run.
//   - a block per output when each output has many inputs to sum and they are
//     contiguous, or when there are few outputs (per-channel sums for batch norm
//     and bias gradients: one block per channel over N*H*W elements).
//   - a thread per output otherwise (few inputs per output, e.g. sum over the
//     batch dim of a (N, features) tensor: neighbouring threads read neighbouring
//     addresses).
//
// broadcast_copy:  out[i] = x[x_at(i)], x read with stride 0 along broadcast dims.
//   out row-major. Bytes moved per element: sizeof(T) written (x stays in cache).
#include <algorithm>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/reduce.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

constexpr int kReduceThreads = 512;    // block size of the block reductions
constexpr int kReduceAllBlocks = 1024;  // pass 1 blocks: enough to fill an H100 (132 SMs) several times

template <class T>
__global__ void sum_all_partials_kernel(const T* x, float* partials, int64_t n) {
  float acc = 0.0f;
  KILN_GRID_STRIDE_LOOP(i, n) { acc += to_float(x[i]); }
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// One block of 1024 threads (the bound lets ptxas fit its registers to that).
template <class T>
__global__ void __launch_bounds__(1024) sum_partials_kernel(const float* partials, int count, T* out) {
  float acc = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) out[0] = from_float<T>(acc);
}

// kept.offsets(j) -> where output j's inputs start in x; reduced.offsets(r) -> the
// step to its r-th input.
template <class T>
__global__ void sum_block_per_output_kernel(const T* x, T* out, int64_t outputs, int64_t reduced_count,
                                            OffsetCalculator<1> kept, OffsetCalculator<1> reduced) {
  for (int64_t j = blockIdx.x; j < outputs; j += gridDim.x) {
    int64_t base[1];
    kept.offsets(j, base);
    float acc = 0.0f;
    for (int64_t r = threadIdx.x; r < reduced_count; r += blockDim.x) {
      int64_t step[1];
      reduced.offsets(r, step);
      acc += to_float(x[base[0] + step[0]]);
    }
    acc = block_reduce_sum(acc);
    if (threadIdx.x == 0) out[j] = from_float<T>(acc);
  }
}

template <class T>
__global__ void sum_thread_per_output_kernel(const T* x, T* out, int64_t outputs, int64_t reduced_count,
                                             OffsetCalculator<1> kept, OffsetCalculator<1> reduced) {
  KILN_GRID_STRIDE_LOOP(j, outputs) {
    int64_t base[1];
    kept.offsets(j, base);
    float acc = 0.0f;
    for (int64_t r = 0; r < reduced_count; ++r) {
      int64_t step[1];
      reduced.offsets(r, step);
      acc += to_float(x[base[0] + step[0]]);
    }
    out[j] = from_float<T>(acc);
  }
}

// x's dims after dropping size-1 dims and merging neighbours of the same role.
struct ReduceGroup {
  int64_t size;
  int64_t stride;  // in x, row-major
  bool reduced;
};

std::vector<ReduceGroup> simplify(const Shape& shape, const std::vector<bool>& reduce) {
  std::vector<ReduceGroup> groups;  // built innermost first, reversed at the end
  int64_t stride = 1;
  for (int d = shape.dim() - 1; d >= 0; --d) {
    const int64_t size = shape[d];
    if (size != 1) {
      if (!groups.empty() && groups.back().reduced == reduce[d]) {
        groups.back().size *= size;  // row-major: the outer dim continues the inner one
      } else {
        groups.push_back({size, stride, reduce[d]});
      }
    }
    stride *= size;
  }
  return {groups.rbegin(), groups.rend()};
}

OffsetCalculator<1> calculator_for(const std::vector<ReduceGroup>& groups, bool reduced) {
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides[1];
  for (const ReduceGroup& g : groups) {
    if (g.reduced != reduced) continue;
    sizes.push_back(g.size);
    strides[0].push_back(g.stride);
  }
  return make_offset_calculator<1>(sizes, strides, "sum");
}

}  // namespace

void sum_forward(const Tensor& x, const Tensor& out, const std::vector<bool>& reduce) {
  KILN_CHECK(x.layout() == Layout::nchw && out.layout() == Layout::nchw, "sum: the cuda kernel expects row-major ",
             "x and out, got ", x.describe(), " and ", out.describe());
  KILN_CHECK(static_cast<int>(reduce.size()) == x.dim(), "sum: ", reduce.size(), " reduce flags for ", x.describe());
  Context& ctx = context_for(x);
  set_device(ctx);
  const int64_t n = x.numel(), outputs = out.numel();
  if (outputs == 0) return;
  if (n == 0) {  // a sum over nothing is zero
    CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, static_cast<size_t>(out.nbytes()), ctx.stream()));
    return;
  }
  const std::vector<ReduceGroup> groups = simplify(x.shape(), reduce);
  int64_t reduced_count = 1;
  for (const ReduceGroup& g : groups)
    if (g.reduced) reduced_count *= g.size;

  if (reduced_count == 1) {  // only size-1 dims were reduced: the sum is a copy
    CUDA_CHECK(cudaMemcpyAsync(out.raw_data(), x.raw_data(), static_cast<size_t>(x.nbytes()),
                               cudaMemcpyDeviceToDevice, ctx.stream()));
    return;
  }

  if (outputs == 1) {  // reduce everything: two deterministic passes
    const int blocks = std::min(kReduceAllBlocks, (grid_size(n) + 1) / 2);
    float* partials = static_cast<float*>(ctx.workspace(sizeof(float) * static_cast<size_t>(blocks)));
    KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "sum", {
      KILN_LAUNCH(blocks, kReduceThreads, 0, ctx.stream(), sum_all_partials_kernel<scalar_t>)(
          static_cast<const scalar_t*>(x.raw_data()), partials, n);
      KILN_CHECK_LAUNCH("sum (pass 1 of 2)");
      KILN_LAUNCH(1, 1024, 0, ctx.stream(), sum_partials_kernel<scalar_t>)(partials, blocks,
                                                                  static_cast<scalar_t*>(out.raw_data()));
      KILN_CHECK_LAUNCH("sum (pass 2 of 2)");
    });
    return;
  }

  const OffsetCalculator<1> kept = calculator_for(groups, false);
  const OffsetCalculator<1> reduced = calculator_for(groups, true);
  const bool innermost_reduced = groups.back().reduced;
  const int64_t busy_outputs = 2 * static_cast<int64_t>(ctx.properties().multiProcessorCount);
  const bool block_per_output =
      (innermost_reduced && reduced_count >= 128) || (outputs < busy_outputs && reduced_count >= 4096);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "sum", {
    const scalar_t* x_data = static_cast<const scalar_t*>(x.raw_data());
    scalar_t* out_data = static_cast<scalar_t*>(out.raw_data());
    if (block_per_output) {
      const int blocks = static_cast<int>(std::min<int64_t>(outputs, 65535LL * 16));
      KILN_LAUNCH(blocks, kReduceThreads, 0, ctx.stream(), sum_block_per_output_kernel<scalar_t>)(
          x_data, out_data, outputs, reduced_count, kept, reduced);
    } else {
      KILN_LAUNCH(grid_size(outputs), kThreads, 0, ctx.stream(), sum_thread_per_output_kernel<scalar_t>)(
          x_data, out_data, outputs, reduced_count, kept, reduced);
    }
    KILN_CHECK_LAUNCH("sum");
  });
}

void broadcast_copy(const Tensor& x, const Tensor& out, const std::vector<int64_t>& x_strides) {
  KILN_CHECK(out.layout() == Layout::nchw, "broadcast_to: the cuda kernel expects a row-major out, got ",
             out.describe());
  KILN_CHECK(static_cast<int>(x_strides.size()) == out.dim(), "broadcast_to: ", x_strides.size(),
             " strides for ", out.describe());
  const std::vector<int64_t> strides[1] = {x_strides};
  gather_copy(x, out, make_offset_calculator<1>(out.shape().dims(), strides, "broadcast_to"), "broadcast_to");
}

}  // namespace kiln::cuda
