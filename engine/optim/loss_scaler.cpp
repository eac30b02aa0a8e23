// Dynamic loss scaling (see loss_scaler.h).
#include "engine/optim/loss_scaler.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/check.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace kiln::optim {

LossScaler::LossScaler(LossScalerOptions options) : options_(options), scale_(options.initial_scale) {
  KILN_CHECK(options.initial_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
                 options.backoff_factor < 1 && options.growth_interval > 0,
             "LossScaler: expected initial_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and ",
             "growth_interval > 0, got ", options.initial_scale, ", ", options.growth_factor, ", ", options.backoff_factor, ", ",
             options.growth_interval);
}

Tensor LossScaler::scale(const Tensor& loss) const { return mul_scalar(loss, scale_); }

bool LossScaler::unscale(Optimizer& optimizer) {
  KILN_CHECK(!unscaled_, "LossScaler: unscale() called twice in one step (step() resets it)");
  NoGradGuard no_grad;
  // g * 0 is 0 for a finite g and nan for inf or nan, so the sum over all of them is
  // nan exactly when one element is not finite. The sums stay on the device and are
  // read once, with a single synchronisation per step.
  Tensor non_finite;
  for (ParamGroup& group : optimizer.groups())
    for (Tensor& p : group.params) {
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      const Tensor unscaled = mul_scalar(g, 1.0 / scale_);
      p.set_grad(unscaled);
      const Tensor probe = sum(mul_scalar(unscaled.to(DType::f32), 0.0));
      non_finite = non_finite.defined() ? add(non_finite, probe.to(non_finite.device())) : probe;
    }
  finite_ = !non_finite.defined() || std::isfinite(non_finite.to(Device::cpu()).item());
  unscaled_ = true;
  return finite_;
}

bool LossScaler::step(Optimizer& optimizer) {
  if (!unscaled_) unscale(optimizer);
  unscaled_ = false;
  if (!finite_) {
    ++skipped_steps_;
    good_steps_ = 0;
    scale_ *= options_.backoff_factor;
    return false;
  }
  optimizer.step();
  if (++good_steps_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
  return true;
}

void LossScaler::restore(double scale, int good_steps_in_a_row, int64_t skipped_steps) {
  KILN_CHECK(scale > 0 && good_steps_in_a_row >= 0 && skipped_steps >= 0, "LossScaler::restore: got scale ", scale,
             ", good steps ", good_steps_in_a_row, ", skipped ", skipped_steps);
  scale_ = scale;
  good_steps_ = good_steps_in_a_row;
  skipped_steps_ = skipped_steps;
}

}  // namespace kiln::optim
