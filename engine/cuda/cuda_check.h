// Status checks for CUDA, cuBLAS and cuDNN, built from one generic macro (as in
// ggml's CUDA_CHECK_GEN): each records the expression, the file and the line, and
// throws kiln::Error with the library's own description of the status.
//   CUDA_CHECK(cudaMemcpyAsync(...));
//   KILN_CHECK_LAUNCH("relu_forward");   // after every kernel launch
// In destructors use CUDA_CHECK_NOTHROW, which prints instead of throwing.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>

#include "engine/core/check.h"

namespace kiln::cuda {
const char* cublas_status_name(cublasStatus_t status);
}

#define KILN_STATUS_CHECK(expr, status_type, success, describe)                                      \
  do {                                                                                                \
    const status_type kiln_status_ = (expr);                                                          \
    if (kiln_status_ != (success))                                                                    \
      ::kiln::throw_error(::kiln::str(#expr, " failed: ", describe(kiln_status_)), __FILE__, __LINE__); \
  } while (0)

#define CUDA_CHECK(expr) KILN_STATUS_CHECK(expr, cudaError_t, cudaSuccess, cudaGetErrorString)
#define CUBLAS_CHECK(expr) KILN_STATUS_CHECK(expr, cublasStatus_t, CUBLAS_STATUS_SUCCESS, ::kiln::cuda::cublas_status_name)
#define CUDNN_CHECK(expr) KILN_STATUS_CHECK(expr, cudnnStatus_t, CUDNN_STATUS_SUCCESS, cudnnGetErrorString)

// After a kernel launch: a bad configuration shows up here, named by op.
#define KILN_CHECK_LAUNCH(op_name)                                                                     \
  do {                                                                                                 \
    const cudaError_t kiln_status_ = cudaGetLastError();                                               \
    if (kiln_status_ != cudaSuccess)                                                                   \
      ::kiln::throw_error(::kiln::str(op_name, ": kernel launch failed: ", cudaGetErrorString(kiln_status_)), \
                          __FILE__, __LINE__);                                                         \
  } while (0)

#define CUDA_CHECK_NOTHROW(expr)                                                                       \
  do {                                                                                                 \
    const cudaError_t kiln_status_ = (expr);                                                           \
    if (kiln_status_ != cudaSuccess)                                                                   \
      std::fprintf(stderr, "kiln: %s failed: %s [%s:%d]\n", #expr, cudaGetErrorString(kiln_status_), __FILE__, __LINE__); \
  } while (0)
