// The GEMM under matmul and linear on oneDNN (declared in linear.h under `namespace
// onednn`): dnnl_sgemm, oneDNN's BLAS-style single-precision GEMM, row-major, which
// picks its kernel for the CPU it finds at run time (AVX-512 here) and runs on the
// calling thread's OpenMP team. linear.cpp sends a CPU f32 GEMM here when
// cpu_gemm_path() is onednn; the Eigen reference (cpu/linear_cpu.cpp) is what this is
// tested against (tests/ops/test_gemm_onednn.cpp).
//
// Why: kiln's portable build compiles Eigen for SSE2 (4 floats per instruction, no
// fused multiply-add), so every fully connected layer ran at a fraction of the
// machine's speed; a fully connected layer is one GEMM forward and two backward.
//
// Math: c (M, N) = op(a) · op(b), op(a) = a (M, K) or a^T (a stored (K, M)); likewise
// b. Row-major leading dimensions: a's row length is K (M when transposed), b's N (K
// when transposed), c's N. Bytes moved per product: a, b read (the library re-reads
// blocks from cache), c written once.
#include <algorithm>

#include "engine/ops/linear.h"
#include "engine/ops/onednn/onednn.h"

namespace kiln::onednn {

void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, const float* a, const float* b,
          float* c) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: c = 0 (BLAS would reject the leading dimension 0)
    std::fill(c, c + batch * M * N, 0.0f);
    return;
  }
  const dnnl_dim_t lda = trans_a ? M : K, ldb = trans_b ? K : N, ldc = N;
  for (int64_t i = 0; i < batch; ++i) {
    const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, 1.0f, a + i * M * K,
                                            lda, b + i * K * N, ldb, 0.0f, c + i * M * N, ldc);
    if (status != dnnl_success)
      fail("gemm", str("(M, N, K) = (", M, ", ", N, ", ", K, "), trans_a ", trans_a, ", trans_b ", trans_b),
           dnnl::error(status, "dnnl_sgemm"), "KILN_CPU_GEMM=eigen");
  }
}

}  // namespace kiln::onednn
