// Shared device-side helpers for kernels/*.cu.
//
// - Loads and stores of f32 / f16 / bf16 through float: kernels compute in f32 and
//   only store in the tensor's dtype (mixed precision keeps math in f32).
// - KILN_DISPATCH_CUDA_FLOAT(dtype, op, ...): runs the body with `scalar_t` set to
//   float, __half or __nv_bfloat16, and fails with the op's name otherwise.
// - grid_size(n): blocks for a grid-stride loop of kThreads threads, capped so a
//   huge tensor does not launch millions of blocks.
// - OffsetCalculator<K>: linear index -> memory offsets of K tensors, for
//   broadcasting, layout changes and permutes (PyTorch's name for the same idea).
// - warp_reduce_sum / block_reduce_sum: tree sums with warp shuffles.
// - KILN_DISPATCH_CUDA_ELEMENT_SIZE: for kernels that only move bytes (permute,
//   concat, fill), dispatch on the element size so that every dtype works.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "engine/core/check.h"
#include "kernels/launch.cuh"
#include "engine/core/dtype.h"
#include "engine/tensor/tensor.h"

namespace kiln::cuda {

constexpr int kThreads = 256;

inline int grid_size(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(double x) { return static_cast<float>(x); }

template <class T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Grid-stride loop over [0, n).
#define KILN_GRID_STRIDE_LOOP(i, n)                                                         \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// ---- index arithmetic
constexpr int kMaxRank = 8;

// Maps the linear index of a loop over `sizes` (row-major, last dim fastest) to an
// offset in each of K tensors, given each tensor's element stride along each dim
// (0 along a broadcast dim). Passed to kernels by value: it lives in the kernel's
// parameter space, so no device allocation is needed for the shape.
template <int K>
struct OffsetCalculator {
  int rank = 0;
  int64_t sizes[kMaxRank] = {};
  int64_t strides[K][kMaxRank] = {};

  __host__ __device__ __forceinline__ void offsets(int64_t linear, int64_t (&out)[K]) const {
#pragma unroll
    for (int k = 0; k < K; ++k) out[k] = 0;
    for (int d = rank - 1; d >= 0; --d) {  // peel coordinates off, innermost first
      const int64_t size = sizes[d];
      const int64_t coordinate = linear % size;
      linear /= size;
#pragma unroll
      for (int k = 0; k < K; ++k) out[k] += coordinate * strides[k][d];
    }
  }
};

// Builds an OffsetCalculator, dropping size-1 dims and merging neighbouring dims
// that are contiguous in every tensor ((N, C, H, W) + (C, 1, 1) becomes a loop over
// (N, C, H*W)): fewer divisions per element, and rank <= 8 for more shapes.
template <int K>
OffsetCalculator<K> make_offset_calculator(const std::vector<int64_t>& sizes,
                                           const std::vector<int64_t> (&strides)[K], const char* op) {
  std::vector<int64_t> merged_sizes;
  std::vector<int64_t> merged_strides[K];
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    bool mergeable = !merged_sizes.empty();
    for (int k = 0; k < K && mergeable; ++k)
      mergeable = merged_strides[k].back() == strides[k][d] * sizes[d];
    if (mergeable) {  // the previous dim steps exactly over this one in every tensor
      merged_sizes.back() *= sizes[d];
      for (int k = 0; k < K; ++k) merged_strides[k].back() = strides[k][d];
    } else {
      merged_sizes.push_back(sizes[d]);
      for (int k = 0; k < K; ++k) merged_strides[k].push_back(strides[k][d]);
    }
  }
  KILN_CHECK(merged_sizes.size() <= static_cast<size_t>(kMaxRank), op, ": the cuda kernels handle at most ",
             kMaxRank, " non-mergeable dimensions, got ", merged_sizes.size());
  OffsetCalculator<K> calc;
  calc.rank = static_cast<int>(merged_sizes.size());
  for (int d = 0; d < calc.rank; ++d) {
    calc.sizes[d] = merged_sizes[d];
    for (int k = 0; k < K; ++k) calc.strides[k][d] = merged_strides[k][d];
  }
  return calc;
}

// The order in which t's logical dims are laid out in memory, outermost first:
// (N, C, H, W) for nchw, (N, H, W, C) for nhwc. Kernels that write in memory
// order walk this order so that neighbouring threads write neighbouring addresses.
inline std::vector<int> memory_order(const Tensor& t) {
  if (t.layout() == Layout::nhwc && t.dim() == 4) return {0, 2, 3, 1};
  std::vector<int> order(static_cast<size_t>(t.dim()));
  for (int d = 0; d < t.dim(); ++d) order[d] = d;
  return order;
}

// dst[i] = src[src_at(i)] for every memory offset i of dst, bits copied as they are
// (any dtype; src and dst share it). The building block of permute, broadcast_to
// and layout changes. Defined in kernels/shape.cu.
void gather_copy(const Tensor& src, const Tensor& dst, const OffsetCalculator<1>& src_at, const char* op);

// ---- reductions (blockDim.x must be a multiple of 32, at most 1024)
__device__ __forceinline__ float warp_reduce_sum(float value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// The sum of `value` over the block, returned to every thread. Two levels: each
// warp sums in registers, then warp 0 sums the per-warp results from shared memory.
__device__ __forceinline__ float block_reduce_sum(float value) {
  __shared__ float warp_sums[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  value = warp_reduce_sum(value);
  __syncthreads();  // warp_sums may still be read by a previous call
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  value = lane < warps ? warp_sums[lane] : 0.0f;
  return warp_reduce_sum(value);
}

}  // namespace kiln::cuda

#define KILN_DISPATCH_CUDA_FLOAT(dtype, op_name, ...)                                                   \
  do {                                                                                                   \
    switch (dtype) {                                                                                     \
      case ::kiln::DType::f32: { using scalar_t = float; __VA_ARGS__; break; }                           \
      case ::kiln::DType::f16: { using scalar_t = __half; __VA_ARGS__; break; }                          \
      case ::kiln::DType::bf16: { using scalar_t = __nv_bfloat16; __VA_ARGS__; break; }                  \
      default:                                                                                           \
        KILN_FAIL(op_name, ": dtype ", ::kiln::dtype_name(dtype), " is not supported on cuda (f32, f16, bf16)"); \
    }                                                                                                    \
  } while (0)

// Byte-moving kernels see an element as an unsigned integer of its size.
#define KILN_DISPATCH_CUDA_ELEMENT_SIZE(dtype, op_name, ...)                                           \
  do {                                                                                                   \
    switch (::kiln::size_of(dtype)) {                                                                    \
      case 1: { using element_t = uint8_t; __VA_ARGS__; break; }                                         \
      case 2: { using element_t = uint16_t; __VA_ARGS__; break; }                                        \
      case 4: { using element_t = uint32_t; __VA_ARGS__; break; }                                        \
      case 8: { using element_t = uint64_t; __VA_ARGS__; break; }                                        \
      default: KILN_FAIL(op_name, ": unexpected element size ", ::kiln::size_of(dtype));                 \
    }                                                                                                    \
  } while (0)
