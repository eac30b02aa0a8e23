// AdamFamily: per-parameter state, the host-side scalars of each step, and the
// CPU reference update. The fused CUDA update is kernels/optim_adam.cu.
#include "engine/optim/adam.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln::optim {

AdamFamily::AdamFamily(std::vector<ParamGroup> groups, AdamOptions options)
    : Optimizer(std::move(groups)), options_(options) {
  KILN_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1, name(),
             ": betas must lie in [0, 1), got (", options.beta1, ", ", options.beta2, ")");
  KILN_CHECK(options.eps >= 0, name(), ": eps must be >= 0, got ", options.eps);
  KILN_CHECK(!options.amsgrad || options.variant == AdamVariant::adam || options.variant == AdamVariant::adamw,
             name(), ": amsgrad exists for adam and adamw only (as in torch.optim)");
}

std::string AdamFamily::name() const {
  switch (options_.variant) {
    case AdamVariant::adam: return "adam";
    case AdamVariant::adamw: return "adamw";
    case AdamVariant::nadam: return "nadam";
    case AdamVariant::radam: return "radam";
    case AdamVariant::count: break;
  }
  return "adam?";
}

double nadam_mu(double beta1, double momentum_decay, double step) {
  return beta1 * (1.0 - 0.5 * std::pow(0.96, step * momentum_decay));
}

double radam_rectification(double beta2, double step) {
  const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;  // the length of the SMA that v approximates, as t -> inf
  const double beta2_t = std::pow(beta2, step);
  const double rho_t = rho_inf - 2.0 * step * beta2_t / (1.0 - beta2_t);
  // Below 5 the variance of the adaptive term is unbounded (Liu et al. 2019):
  // the step falls back to bias-corrected momentum.
  if (rho_t <= 5.0) return 0.0;
  return std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t));
}

void AdamFamily::step() {
  NoGradGuard no_grad;
  for (ParamGroup& group : groups_) {
    for (Tensor& p : group.params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;  // frozen, or not reached by this backward
      KILN_CHECK(grad.dtype() == p.dtype() && grad.layout() == p.layout(), name(), ": the gradient of a ",
                 p.describe(), " parameter is ", grad.describe());
      ParamState& state = state_of(p);
      if (state.tensors.empty()) {  // the first step: the averages start at zero, as in torch
        state.tensors["exp_avg"] = zeros_like(p);
        state.tensors["exp_avg_sq"] = zeros_like(p);
        if (options_.amsgrad) state.tensors["max_exp_avg_sq"] = zeros_like(p);
        state.scalars["step"] = 0;
        if (options_.variant == AdamVariant::nadam) state.scalars["mu_product"] = 1;
      }
      // Each parameter counts its own steps, as torch does: one that had no
      // gradient for a while gets the bias correction of the steps it really took.
      const double t = state.scalars["step"] += 1;

      AdamStepScalars s;
      s.variant = options_.variant;
      s.lr = group.lr;
      s.beta1 = options_.beta1;
      s.beta2 = options_.beta2;
      s.eps = options_.eps;
      s.weight_decay = group.weight_decay;
      s.amsgrad = options_.amsgrad;
      s.bias_correction1 = 1.0 - std::pow(options_.beta1, t);
      s.bias_correction2 = 1.0 - std::pow(options_.beta2, t);
      if (options_.variant == AdamVariant::nadam) {
        const double mu = nadam_mu(options_.beta1, options_.momentum_decay, t);
        const double mu_next = nadam_mu(options_.beta1, options_.momentum_decay, t + 1);
        // torch 1.13 keeps mu_product in a float32 0-d tensor whatever the
        // parameter dtype, so the product is rounded to f32 at each multiply;
        // doing the same keeps f64 runs equal to torch's to 1e-10.
        const float mu_product = static_cast<float>(state.scalars["mu_product"]) * static_cast<float>(mu);
        const float mu_product_next = mu_product * static_cast<float>(mu) * static_cast<float>(mu_next);
        state.scalars["mu_product"] = mu_product;
        s.nadam_grad_coefficient = group.lr * (1.0 - mu) / (1.0 - static_cast<double>(mu_product));
        s.nadam_exp_avg_coefficient = group.lr * mu_next / (1.0 - static_cast<double>(mu_product_next));
      }
      if (options_.variant == AdamVariant::radam) s.radam_rectification = radam_rectification(options_.beta2, t);

      const Tensor exp_avg = state.tensors.at("exp_avg");
      const Tensor exp_avg_sq = state.tensors.at("exp_avg_sq");
      const Tensor max_exp_avg_sq = options_.amsgrad ? state.tensors.at("max_exp_avg_sq") : Tensor();
      on_device(
          p.device(),
          [&] {
            cpu_floating(p.dtype(), "adam_step", [&](auto tag) {
              using T = decltype(tag);
              cpu::adam_step<T>(p.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(),
                                max_exp_avg_sq.defined() ? max_exp_avg_sq.data<T>() : nullptr, p.numel(), s);
            });
          },
          [&] { KILN_CUDA_ONLY(cuda::adam_step(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, s)); });
    }
  }
  ++steps_;
}

namespace cpu {
template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
               const AdamStepScalars& s) {
  const double step_size = s.lr / s.bias_correction1;  // adam/adamw: lr folded with the m correction
  const double sqrt_bias_correction2 = std::sqrt(s.bias_correction2);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    double p = static_cast<double>(param[i]);
    double g = static_cast<double>(grad[i]);
    if (s.variant == AdamVariant::adamw)
      p *= 1.0 - s.lr * s.weight_decay;  // decoupled: shrink p, leave g (and so m, v) alone
    else
      g += s.weight_decay * p;  // L2: the decay goes through m and v like any gradient
    const double m = s.beta1 * static_cast<double>(exp_avg[i]) + (1.0 - s.beta1) * g;
    const double v = s.beta2 * static_cast<double>(exp_avg_sq[i]) + (1.0 - s.beta2) * g * g;
    exp_avg[i] = static_cast<T>(m);
    exp_avg_sq[i] = static_cast<T>(v);
    switch (s.variant) {
      case AdamVariant::adam:
      case AdamVariant::adamw: {
        double v_used = v;
        if (s.amsgrad) {  // never let the denominator shrink: a bound on the effective step
          v_used = std::max(static_cast<double>(max_exp_avg_sq[i]), v);
          max_exp_avg_sq[i] = static_cast<T>(v_used);
        }
        const double denom = std::sqrt(v_used) / sqrt_bias_correction2 + s.eps;
        p -= step_size * (m / denom);
        break;
      }
      case AdamVariant::nadam: {
        // Nesterov: part of the step uses the current gradient, part the momentum
        // one step ahead (mu_{t+1}); two updates, in torch's order.
        const double denom = std::sqrt(v / s.bias_correction2) + s.eps;
        p -= s.nadam_grad_coefficient * (g / denom);
        p -= s.nadam_exp_avg_coefficient * (m / denom);
        break;
      }
      case AdamVariant::radam: {
        const double m_hat = m / s.bias_correction1;
        if (s.radam_rectification > 0)
          p -= m_hat * s.lr * (sqrt_bias_correction2 / (std::sqrt(v) + s.eps)) * s.radam_rectification;
        else
          p -= m_hat * s.lr;
        break;
      }
      case AdamVariant::count: break;
    }
    param[i] = static_cast<T>(p);
  }
}
template void adam_step<float>(float*, const float*, float*, float*, float*, int64_t, const AdamStepScalars&);
template void adam_step<double>(double*, const double*, double*, double*, double*, int64_t, const AdamStepScalars&);
}  // namespace cpu

}  // namespace kiln::optim
