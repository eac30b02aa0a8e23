// Gradient clipping by global norm (see grad_clip.h): the CPU reference here, the
// CUDA path in kernels/optim_grad_clip.cu.
#include "engine/train/grad_clip.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln::train {

Tensor clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm) {
  NoGradGuard no_grad;
  KILN_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return scalar(0.0, {DType::f64});
  const Device device = grads.front().device();
  for (const Tensor& g : grads)
    KILN_CHECK(g.device() == device, "clip_grad_norm: every gradient must be on one device, got ",
               grads.front().describe(), " and ", g.describe());
  if (device.is_cuda()) {
    Tensor norm;
    KILN_CUDA_ONLY(norm = cuda::clip_grad_norm(grads, max_norm));
    return norm;
  }
  double total_squared = 0;
  for (const Tensor& g : grads)
    cpu_floating(g.dtype(), "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* x = g.data<T>();
      for (int64_t i = 0, n = g.numel(); i < n; ++i) total_squared += static_cast<double>(x[i]) * x[i];
    });
  const double total = std::sqrt(total_squared);
  const double coefficient = std::min(1.0, max_norm / (total + 1e-6));
  if (coefficient < 1)  // multiplying by 1 would change nothing
    for (const Tensor& g : grads)
      cpu_floating(g.dtype(), "clip_grad_norm", [&](auto tag) {
        using T = decltype(tag);
        T* x = g.data<T>();
        for (int64_t i = 0, n = g.numel(); i < n; ++i) x[i] = static_cast<T>(static_cast<double>(x[i]) * coefficient);
      });
  return scalar(total, {DType::f64});
}

}  // namespace kiln::train
