#include "engine/train/grad_clip.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace kiln::train {

double clip_grad_norm(const std::vector<Tensor>& parameters, double max_norm) {
  NoGradGuard no_grad;
  // Sum of squares per parameter on its device, in f32, then one read on the host.
  double total_squared = 0;
  for (const Tensor& p : parameters) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor g32 = g.to(DType::f32);
    total_squared += sum(mul(g32, g32)).to(Device::cpu()).item();
  }
  const double total = std::sqrt(total_squared);
  if (total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (const Tensor& p : parameters)
      if (p.grad().defined()) p.set_grad(mul_scalar(p.grad(), scale));
  }
  return total;
}

}  // namespace kiln::train
