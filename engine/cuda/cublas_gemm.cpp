// The GEMM behind matmul and linear on the GPU: cublasGemmStridedBatchedEx.
//
//   c (M, N) = op(a) · op(b), `batch` times, strides M*K, K*N, M*N elements
//
// Row-major with a column-major library: a row-major (M, N) matrix has the same
// bytes as a column-major (N, M) matrix, i.e. as its transpose. So instead of
// c = op(a)·op(b) we ask cuBLAS for c^T = op(b)^T · op(a)^T, passing b first:
//   cuBLAS (m, n, k) = (N, M, K); "A" = b with transb, lda = b's row length;
//   "B" = a with transa, ldb = a's row length; ldc = N.
// No data is transposed; only the roles swap.
//
// Precision: data f32, f16 or bf16; compute type CUBLAS_COMPUTE_32F for all (f32
// accumulation; for f32 data no TF32, so results match the CPU to ~1e-6), unless
// the context allows TF32 (Context::set_tf32): then CUBLAS_COMPUTE_32F_FAST_TF32.
// Memory moved per call: (M*K + K*N + M*N) * batch elements; work 2*M*N*K*batch flops.
#include <cublas_v2.h>

#include <algorithm>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/linear.h"

namespace kiln::cuda {

namespace {
cudaDataType_t cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return CUDA_R_32F;
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    default: KILN_FAIL("gemm: dtype ", dtype_name(dtype), " is not supported by the cuBLAS path (f32, f16, bf16)");
  }
}
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, const Tensor& a,
          const Tensor& b, const Tensor& c) {
  KILN_CHECK(a.dtype() == b.dtype() && a.dtype() == c.dtype(), "gemm: a, b and c must share one dtype, got ",
             a.describe(), ", ", b.describe(), ", ", c.describe());
  // Sizes were checked against INT_MAX by the caller (engine/ops/linear.cpp).
  const cudaDataType_t type = cuda_data_type(a.dtype());
  Context& ctx = context_for(a);
  set_device(ctx);
  cublasHandle_t handle = ctx.cublas();
  CUBLAS_CHECK(cublasSetStream(handle, ctx.stream()));
  if (M == 0 || N == 0 || batch == 0) return;  // nothing to write
  // alpha and beta are read in the compute type (f32); beta = 0 overwrites c, and
  // cuBLAS then never reads c, so an uninitialized output buffer is fine.
  const float alpha = 1.0f, beta = 0.0f;
  // Row lengths of the stored matrices (their leading dimension, seen column-major).
  // cuBLAS wants every leading dimension >= 1 even when K = 0 (then it only writes
  // beta * C = 0): an empty operand has no rows to skip, so 1 is as right as 0.
  const int lda = static_cast<int>(std::max<int64_t>(1, trans_a ? M : K));  // a stored (K, M) if trans_a, else (M, K)
  const int ldb = static_cast<int>(std::max<int64_t>(1, trans_b ? K : N));  // b stored (N, K) if trans_b, else (K, N)
  const int ldc = static_cast<int>(N);
  // f32 data may run on TF32 tensor cores when the context allows it (--precision tf32).
  const cublasComputeType_t compute =
      a.dtype() == DType::f32 && ctx.tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N),
      static_cast<int>(M), static_cast<int>(K), &alpha, b.raw_data(), type, ldb, K * N, a.raw_data(), type, lda,
      M * K, &beta, c.raw_data(), type, ldc, M * N, static_cast<int>(batch), compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace kiln::cuda
