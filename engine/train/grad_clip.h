// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_):
//   total = sqrt(sum over parameters of sum(grad^2))
//   every grad *= min(1, max_norm / (total + 1e-6))
// Nothing is read back: on CUDA the per-chunk sums of squares, the total and the
// coefficient are computed on the device (one multi-tensor launch per chunk, one
// single-block kernel, then a multi-tensor scale whose blocks return at once when
// the coefficient is 1). The gradients are scaled in place (the tape hands every
// leaf a gradient of its own).
#pragma once
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln::train {

// Returns the total norm before clipping as a 0-d tensor on the gradients'
// device, f64 on both backends (the CPU sums in double; CUDA sums per-chunk f32
// partials in double in a fixed order): a caller
// that prints it reads it (.item()) when it wants to, at the cost of one sync.
// With no gradient at all it is 0 (on the CPU).
Tensor clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm);

namespace cuda {
// The device half (kernels/optim_grad_clip.cu): gradients of one device.
Tensor clip_grad_norm(const std::vector<Tensor>& grads, double max_norm);
}  // namespace cuda

}  // namespace kiln::train
