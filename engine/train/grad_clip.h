// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_):
//   total = sqrt(sum over parameters of sum(grad^2))
//   if total > max_norm: every grad *= max_norm / (total + 1e-6)
// Returns the total norm before clipping. Reading the norm costs one device sync.
#pragma once
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln::train {

double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm);

}  // namespace kiln::train
