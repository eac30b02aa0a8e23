// cuBLAS status codes by name, for CUBLAS_CHECK messages (engine/cuda/cuda_check.h).
// cuBLAS has cublasGetStatusName, but spelling the codes out here keeps the
// message readable for statuses a newer library adds (they print their number).
#include <string>

#include "engine/cuda/cuda_check.h"

namespace kiln::cuda {

const char* cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED (cublasCreate failed or was not called)";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED (out of device memory)";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE (bad size, leading dimension or pointer)";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH (the GPU lacks a needed feature)";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED (the kernel failed to run)";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED (this combination of types/options)";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  // An unknown code: keep the text in thread-local storage so the pointer stays valid.
  thread_local std::string unknown;
  unknown = "unknown cuBLAS status " + std::to_string(static_cast<int>(status));
  return unknown.c_str();
}

}  // namespace kiln::cuda
