// Running training totals that stay on the model's device, so that a training step
// never waits for the GPU to report its loss (docs/design.md, engine/train).
//
//   totals: f64 (2) on the logits' device, updated in place (no autograd):
//     totals[0] += loss * N                                  (the batch's summed loss)
//     totals[1] += #{ i : argmax_k logits[i, k] == labels[i] } (correct predictions)
//   logits (N, K) f32 row-major, labels (N) i64, loss a one-element f32 tensor (the
//   batch mean). argmax takes the first of equal maxima, like std::max_element (a
//   NaN never wins against a number that came before it); a label outside [0, K)
//   never counts as correct.
//
// The trainer reads `totals` on the host once per log interval: one device-to-host
// copy of 16 bytes instead of a loss and a logits copy every step. Both backends add
// the loss in double, so the CPU totals equal the old per-step host sums exactly.
#pragma once
#include "engine/tensor/tensor.h"

namespace kiln::metrics {

// totals += (loss * N, correct count of this batch); every tensor on one device.
void accumulate_loss_and_correct(const Tensor& totals, const Tensor& loss, const Tensor& logits, const Tensor& labels);

namespace cpu {
// Correct predictions among the N rows of logits (N, K).
int64_t count_correct(const float* logits, const int64_t* labels, int64_t N, int64_t K);
}  // namespace cpu
namespace cuda {
// One block: each thread scans whole rows for their argmax, a block sum counts the
// hits, and thread 0 adds both totals (in double). No atomics: repeatable.
void accumulate_loss_and_correct(const Tensor& totals, const Tensor& loss, const Tensor& logits, const Tensor& labels);
}  // namespace cuda

}  // namespace kiln::metrics
