// The trainer's running totals on the device (engine/metrics/running_totals.h):
//
//   totals[0] += loss * N
//   totals[1] += #{ i : argmax_k logits[i, k] == labels[i] }
//
// One block of kThreads threads. Thread t scans rows t, t + kThreads, ... for the
// first maximum (the same `best < x` test as the CPU loop, so ties and NaNs give the
// same argmax), a block sum counts the hits (exact in float below 2^24 rows), and
// thread 0 adds both totals in double. Memory: each logit is read once (N K 4
// bytes); a batch of 256 x 1000 logits is 1 MB, a few microseconds. One block is
// enough: this runs once per step next to a forward and a backward pass.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/metrics/running_totals.h"
#include "kernels/common.cuh"

namespace kiln::metrics::cuda {

namespace {

__global__ void accumulate_loss_and_correct_kernel(double* __restrict__ totals, const float* __restrict__ loss,
                                                   const float* __restrict__ logits,
                                                   const int64_t* __restrict__ labels, int64_t N, int64_t K) {
  float hits = 0.f;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    const float* row = logits + i * K;
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (row[best] < row[k]) best = k;
    hits += (K > 0 && labels[i] == best) ? 1.f : 0.f;
  }
  const float correct = kiln::cuda::block_reduce_sum(hits);
  if (threadIdx.x == 0) {
    totals[0] += static_cast<double>(*loss) * static_cast<double>(N);
    totals[1] += static_cast<double>(correct);
  }
}

}  // namespace

void accumulate_loss_and_correct(const Tensor& totals, const Tensor& loss, const Tensor& logits, const Tensor& labels) {
  const int64_t N = logits.shape()[0], K = logits.shape()[1];
  kiln::cuda::Context& ctx = kiln::cuda::context_for(totals);
  kiln::cuda::set_device(ctx);
  KILN_LAUNCH(1, kiln::cuda::kThreads, 0, ctx.stream(), accumulate_loss_and_correct_kernel)(
      totals.data<double>(), loss.data<float>(), logits.data<float>(), labels.data<int64_t>(), N, K);
  KILN_CHECK_LAUNCH("accumulate_loss_and_correct");
}

}  // namespace kiln::metrics::cuda
