#include "engine/augment/mix_loss.h"

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"

namespace kiln::augment {

Tensor soft_cross_entropy(const Tensor& logits, const Tensor& soft_targets) {
  KILN_CHECK(logits.defined() && soft_targets.defined() && logits.dim() == 2 &&
                 soft_targets.shape() == logits.shape(),
             "soft_cross_entropy: logits and soft_targets must both be (N, K), got ",
             logits.defined() ? logits.describe() : std::string("undefined"), " and ",
             soft_targets.defined() ? soft_targets.describe() : std::string("undefined"));
  const Tensor per_image = sum(mul(soft_targets, log_softmax(logits, 1)), {1});  // (N): sum_k t log p
  return neg(mean(per_image));
}

}  // namespace kiln::augment
