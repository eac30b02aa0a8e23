// The running training totals on the cpu, and the dispatch to the CUDA kernel
// (kernels/running_totals.cu): see running_totals.h.
#include "engine/metrics/running_totals.h"

#include "engine/ops/dispatch.h"

namespace kiln::metrics {

namespace cpu {
int64_t count_correct(const float* logits, const int64_t* labels, int64_t N, int64_t K) {
  int64_t correct = 0;
  for (int64_t i = 0; i < N; ++i) {
    const float* row = logits + i * K;
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (row[best] < row[k]) best = k;  // std::max_element's rule: the first maximum wins
    correct += K > 0 && labels[i] == best;
  }
  return correct;
}
}  // namespace cpu

void accumulate_loss_and_correct(const Tensor& totals, const Tensor& loss, const Tensor& logits, const Tensor& labels) {
  const char* op = "accumulate_loss_and_correct";
  check_defined(op, "totals", totals);
  check_defined(op, "loss", loss);
  check_defined(op, "logits", logits);
  check_defined(op, "labels", labels);
  check_same_device(op, {totals, loss, logits, labels});
  KILN_CHECK(totals.dtype() == DType::f64 && totals.numel() == 2, op, ": totals must be f64 (2), got ",
             totals.describe());
  KILN_CHECK(loss.dtype() == DType::f32 && loss.numel() == 1, op, ": loss must be one f32 value, got ",
             loss.describe());
  check_dim(op, "logits", logits, 2, "(N, K)");
  KILN_CHECK(logits.dtype() == DType::f32, op, ": logits must be f32 (convert with .to(DType::f32)), got ",
             logits.describe());
  KILN_CHECK(labels.dtype() == DType::i64 && labels.shape() == Shape({logits.shape()[0]}), op,
             ": labels must be i64 (", logits.shape()[0], "), got ", labels.describe());
  on_device(
      totals.device(),
      [&] {
        const int64_t N = logits.shape()[0], K = logits.shape()[1];
        double* t = totals.data<double>();
        t[0] += static_cast<double>(*loss.data<float>()) * static_cast<double>(N);
        t[1] += static_cast<double>(cpu::count_correct(logits.data<float>(), labels.data<int64_t>(), N, K));
      },
      [&] { KILN_CUDA_ONLY(cuda::accumulate_loss_and_correct(totals, loss, logits, labels)); });
}

}  // namespace kiln::metrics
