// AdamFamily: per-parameter state, the scalars of each step (adam_math.h), and the
// CPU reference update. The fused CUDA updates are kernels/optim_adam.cu.
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

AdamHyperparameters AdamFamily::hyperparameters(const ParamGroup& group) const {
  AdamHyperparameters h;
  h.variant = options_.variant;
  h.lr = group.lr;
  h.beta1 = options_.beta1;
  h.beta2 = options_.beta2;
  h.eps = options_.eps;
  h.weight_decay = group.weight_decay;
  h.amsgrad = options_.amsgrad;
  h.momentum_decay = options_.momentum_decay;
  return h;
}

void AdamFamily::apply_step(const Tensor& found_inf) {
  const bool nadam = options_.variant == AdamVariant::nadam;
  for (size_t group_index = 0; group_index < groups_.size(); ++group_index) {
    ParamGroup& group = groups_[group_index];
    const AdamHyperparameters h = hyperparameters(group);
    std::vector<Tensor> multi_tensor_params;
    for (Tensor& p : group.params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;  // frozen, or not reached by this backward
      KILN_CHECK(grad.dtype() == p.dtype() && grad.layout() == p.layout(), name(), ": the gradient of a ",
                 p.describe(), " parameter is ", grad.describe());
      ParamState& state = state_of(p);
      if (!state.tensors.count("exp_avg")) {  // the first step: the averages start at zero, as in torch
        state.tensors["exp_avg"] = zeros_like(p);
        state.tensors["exp_avg_sq"] = zeros_like(p);
        if (options_.amsgrad) state.tensors["max_exp_avg_sq"] = zeros_like(p);
      }
      if (goes_multi_tensor(p)) {
        multi_tensor_params.push_back(p);
        continue;
      }
      // Each parameter counts its own steps, as torch does: one that had no
      // gradient for a while gets the bias correction of the steps it really took.
      double& step = host_scalar(state, "step", 0);
      step += 1;
      double mu_product = 1;
      if (nadam) {
        double& product = host_scalar(state, "mu_product", 1);
        mu_product = product;
        product = nadam_mu_product_after(h, step, product);
      }
      const AdamStepScalars s = adam_step_scalars(h, step, mu_product);

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
    for (const std::vector<Tensor>& list : split_by_device_and_dtype(multi_tensor_params)) {
      std::vector<Tensor> grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, mu_products;
      for (const Tensor& p : list) {
        ParamState& state = state_of(p);
        grads.push_back(p.grad());
        exp_avgs.push_back(state.tensors.at("exp_avg"));
        exp_avg_sqs.push_back(state.tensors.at("exp_avg_sq"));
        if (options_.amsgrad) max_exp_avg_sqs.push_back(state.tensors.at("max_exp_avg_sq"));
        steps.push_back(device_scalar(state, "step", p.device(), 0));
        if (nadam) mu_products.push_back(device_scalar(state, "mu_product", p.device(), 1));
      }
      const ScheduledLr lr = scheduled_lr(group_index, list.front().device());
      KILN_CUDA_ONLY(cuda::adam_multi_tensor_step(list, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                                                  mu_products, h, lr, found_inf));
    }
  }
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
