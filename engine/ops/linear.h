// Matrix products: matmul (2-D and batched 3-D) and the fully connected layer.
//
//   matmul:  c (M, N) = a (M, K) · b (K, N),   or per batch: (B, M, K) · (B, K, N) -> (B, M, N)
//            grad_a = grad_c · b^T             grad_b = a^T · grad_c
//   linear:  y (N, out) = x (N, in) · weight^T + bias,   weight (out, in), bias (out): torch's F.linear
//            grad_x      = grad_y · weight     (N, out) · (out, in)
//            grad_weight = grad_y^T · x        (out, N) · (N, in)
//            grad_bias   = grad_y summed over N
//
// Here N in linear is the batch; inside gemm, M, N, K are the usual BLAS sizes.
// Saved for backward: each op keeps only the operands the requested gradients use.
// All operands are row-major (2-D and 3-D tensors have no other layout).
#pragma once
#include "engine/tensor/tensor.h"

namespace kiln {

Tensor matmul(const Tensor& a, const Tensor& b);
// Each backward *returns* a fresh gradient (the tape accumulates into leaves).
Tensor matmul_backward_a(const Tensor& grad_output, const Tensor& b);  // grad_output · b^T
Tensor matmul_backward_b(const Tensor& grad_output, const Tensor& a);  // a^T · grad_output

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);  // bias may be undefined
Tensor linear_backward_input(const Tensor& grad_output, const Tensor& weight);  // (N, out) -> (N, in)
Tensor linear_backward_weight(const Tensor& grad_output, const Tensor& x);      // -> (out, in)
Tensor linear_backward_bias(const Tensor& grad_output);                         // -> (out)

// The one GEMM both ops are built on, for row-major operands, `batch` times with
// strides M*K, K*N, M*N:   c (M, N) = op(a) · op(b)   (c is overwritten)
// op(a) is a (M, K), or a^T when trans_a (a stored as (K, M)); likewise op(b) (K, N).
namespace cpu {
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, const T* a, const T* b, T* c);
// y (rows, cols) += bias (cols), broadcast over the rows.
template <class T> void add_row_bias(T* y, const T* bias, int64_t rows, int64_t cols);
}  // namespace cpu
// The fast path (engine/ops/onednn/gemm_onednn.cpp): the same contract in f32, on dnnl_sgemm.
namespace onednn {
void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, const float* a, const float* b,
          float* c);
}  // namespace onednn
// Which implementation runs a CPU f32 GEMM (matmul, linear and their backward):
//   onednn  dnnl_sgemm, the default: it measured faster (docs/cpu_fast_path.md)
//   eigen   the readable reference, cpu::gemm
// f64 always runs the reference. The starting value comes from the environment
// variable KILN_CPU_GEMM.
enum class CpuGemmPath { onednn, eigen };
CpuGemmPath cpu_gemm_path();
void set_cpu_gemm_path(CpuGemmPath path);
CpuGemmPath parse_cpu_gemm_path(const std::string& text, const char* where);  // "onednn" | "eigen"
namespace cuda {  // engine/cuda/cublas_gemm.cpp; f32, f16, bf16 with f32 accumulation
void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, const Tensor& a,
          const Tensor& b, const Tensor& c);
}  // namespace cuda

}  // namespace kiln
