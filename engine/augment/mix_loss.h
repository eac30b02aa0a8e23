// Cross entropy against soft targets, the loss that mixup and cutmix need:
//   loss = mean over n of ( - sum_k t_nk * log_softmax(logits_n)_k )
// With one-hot targets it equals cross_entropy(logits, labels). Built from the
// differentiable ops (log_softmax, mul, sum, mean, neg), so its gradient,
// softmax(logits) - t per row divided by N, comes from the tape.
#pragma once
#include "engine/tensor/tensor.h"

namespace kiln::augment {

// logits: (N, K) float; soft_targets: (N, K), same dtype and device, rows summing to 1.
Tensor soft_cross_entropy(const Tensor& logits, const Tensor& soft_targets);

}  // namespace kiln::augment
