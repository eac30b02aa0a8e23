// Dynamic loss scaling (see loss_scaler.h): the state lives in 0-d tensors on the
// gradients' device; the CPU reference of each device step is here, the kernels
// are kernels/optim_amp.cu.
#include "engine/optim/loss_scaler.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/check.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/tensor/factory.h"

namespace kiln::optim {

LossScaler::LossScaler(LossScalerOptions options)
    : options_(options),
      scale_(scalar(options.initial_scale)),
      good_steps_(scalar(0.0, {DType::f64})),
      skipped_steps_(scalar(0.0, {DType::f64})),
      found_inf_(scalar(0.0)) {
  KILN_CHECK(options.initial_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
                 options.backoff_factor < 1 && options.growth_interval > 0,
             "LossScaler: expected initial_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and ",
             "growth_interval > 0, got ", options.initial_scale, ", ", options.growth_factor, ", ", options.backoff_factor, ", ",
             options.growth_interval);
}

void LossScaler::place_on(const Device& device) {
  if (scale_.device() == device) return;
  scale_ = scale_.to(device);
  good_steps_ = good_steps_.to(device);
  skipped_steps_ = skipped_steps_.to(device);
  found_inf_ = found_inf_.to(device);
}

Tensor LossScaler::scale(const Tensor& loss) {
  place_on(loss.device());
  return mul(loss, scale_.to(loss.dtype()));
}

void LossScaler::unscale(Optimizer& optimizer) {
  KILN_CHECK(!unscaled_, "LossScaler: unscale() called twice in one step (step() resets it)");
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (ParamGroup& group : optimizer.groups())
    for (Tensor& p : group.params)
      if (p.grad().defined()) grads.push_back(p.grad());
  if (!grads.empty()) place_on(grads.front().device());
  for (const Tensor& g : grads)
    KILN_CHECK(g.device() == grads.front().device(), "LossScaler: every gradient must be on one device, got ",
               grads.front().describe(), " and ", g.describe());
  fill_(found_inf_, 0.0);
  on_device(
      found_inf_.device(),
      [&] {
        if (cpu::unscale_grads(grads, scale_.item())) fill_(found_inf_, 1.0);
      },
      [&] { KILN_CUDA_ONLY(cuda::unscale_grads(grads, scale_, found_inf_)); });
  unscaled_ = true;
}

void LossScaler::step(Optimizer& optimizer) {
  if (!unscaled_) unscale(optimizer);
  unscaled_ = false;
  optimizer.step(found_inf_);
  on_device(
      found_inf_.device(),
      [&] {
        double scale = scale_.item(), good = good_steps_.item(), skipped = skipped_steps_.item();
        if (found_inf_.item() != 0) {
          skipped += 1;
          good = 0;
          scale *= options_.backoff_factor;
        } else if (++good >= options_.growth_interval) {
          scale *= options_.growth_factor;
          good = 0;
        }
        fill_(scale_, scale);
        fill_(good_steps_, good);
        fill_(skipped_steps_, skipped);
      },
      [&] { KILN_CUDA_ONLY(cuda::update_scale(scale_, good_steps_, skipped_steps_, found_inf_, options_)); });
}

double LossScaler::current_scale() const { return scale_.to(Device::cpu()).item(); }
int64_t LossScaler::skipped_steps() const { return static_cast<int64_t>(skipped_steps_.to(Device::cpu()).item()); }
int LossScaler::good_steps_in_a_row() const { return static_cast<int>(good_steps_.to(Device::cpu()).item()); }

void LossScaler::restore(double scale, int good_steps_in_a_row, int64_t skipped_steps) {
  KILN_CHECK(scale > 0 && good_steps_in_a_row >= 0 && skipped_steps >= 0, "LossScaler::restore: got scale ", scale,
             ", good steps ", good_steps_in_a_row, ", skipped ", skipped_steps);
  fill_(scale_, scale);
  fill_(good_steps_, good_steps_in_a_row);
  fill_(skipped_steps_, static_cast<double>(skipped_steps));
}

namespace cpu {
bool unscale_grads(const std::vector<Tensor>& grads, double scale) {
  const double inverse = 1.0 / scale;
  bool found_inf = false;
  for (const Tensor& g : grads)
    cpu_floating(g.dtype(), "unscale_grads", [&](auto tag) {
      using T = decltype(tag);
      T* x = g.data<T>();
      for (int64_t i = 0, n = g.numel(); i < n; ++i) {
        x[i] = static_cast<T>(static_cast<double>(x[i]) * inverse);
        found_inf = found_inf || !std::isfinite(x[i]);
      }
    });
  return found_inf;
}
}  // namespace cpu

}  // namespace kiln::optim
