// Block-wide reductions for "one block per row" kernels (softmax, cross-entropy).
//
// Every thread of the block passes its partial value and gets back the block's
// total. Two stages: a butterfly of warp shuffles inside each warp (no shared
// memory), then warp 0 combines the per-warp results through shared memory. The
// order of the additions depends only on blockDim, never on timing, so the result
// is bit-for-bit repeatable from run to run.
//
// Preconditions: blockDim.x is a multiple of 32 and at most 1024; every thread of
// the block calls the function (it contains __syncthreads).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace kiln::cuda {

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <class Op>
__device__ __forceinline__ float warp_reduce(float value, Op op) {
  // After the xor butterfly every lane holds the warp's total.
  for (int offset = 16; offset > 0; offset >>= 1) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

template <class Op>
__device__ float block_reduce(float value, Op op, float identity) {
  __shared__ float warp_totals[32];
  __shared__ float block_total;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  value = warp_reduce(value, op);
  if (lane == 0) warp_totals[warp] = value;
  __syncthreads();
  if (warp == 0) {
    float total = lane < warps ? warp_totals[lane] : identity;
    total = warp_reduce(total, op);
    if (lane == 0) block_total = total;
  }
  __syncthreads();
  const float result = block_total;
  // A second call right after this one reuses the shared slots: wait until all read them.
  __syncthreads();
  return result;
}

__device__ __forceinline__ float block_sum(float value) { return block_reduce(value, SumOp{}, 0.f); }
__device__ __forceinline__ float block_max(float value) { return block_reduce(value, MaxOp{}, -INFINITY); }

// Threads per block for rows of `size` elements: a power of two from 32 to 256, so
// short rows (10 classes) do not leave 246 threads idle.
inline int row_block_threads(int64_t size) {
  int threads = 32;
  while (threads < 256 && threads < size) threads *= 2;
  return threads;
}

}  // namespace kiln::cuda
