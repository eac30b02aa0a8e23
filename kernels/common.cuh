// Shared device-side helpers for kernels/*.cu.
//
// - Loads and stores of f32 / f16 / bf16 through float: kernels compute in f32 and
//   only store in the tensor's dtype (mixed precision keeps math in f32).
// - KILN_DISPATCH_CUDA_FLOAT(dtype, op, ...): runs the body with `scalar_t` set to
//   float, __half or __nv_bfloat16, and fails with the op's name otherwise.
// - grid_size(n): blocks for a grid-stride loop of kThreads threads, capped so a
//   huge tensor does not launch millions of blocks.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/core/check.h"
#include "engine/core/dtype.h"

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
