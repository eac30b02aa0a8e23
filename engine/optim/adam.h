// The Adam family: Adam, AdamW, NAdam and RAdam, exactly as torch.optim 1.13
// computes them (single-tensor path), sharing one update loop and one fused CUDA
// kernel. Each keeps two running averages per parameter element:
//   m = beta1 m + (1 - beta1) g        (exp_avg: the mean of the gradient)
//   v = beta2 v + (1 - beta2) g^2      (exp_avg_sq: the mean of its square)
// and steps by roughly m / sqrt(v): every element gets its own step size. The
// variants differ in where weight decay enters and in how m and v are corrected
// for starting at zero; docs/optim.md writes out all four.
#pragma once
#include "engine/optim/optimizer.h"

namespace kiln::optim {

enum class AdamVariant {
  adam,   // weight decay as L2: g += wd * p
  adamw,  // decoupled weight decay: p *= 1 - lr * wd, g untouched
  nadam,  // Nesterov momentum with the momentum_decay schedule of mu_t
  radam,  // rectified: plain momentum SGD until the variance of v is trustworthy
  count
};
static_assert(static_cast<int>(AdamVariant::count) == 4, "add the new variant to adam.cpp and optim_adam.cu");

struct AdamOptions {
  AdamVariant variant = AdamVariant::adam;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool amsgrad = false;          // adam and adamw only, as in torch
  double momentum_decay = 4e-3;  // nadam only
};

class AdamFamily : public Optimizer {
 public:
  AdamFamily(std::vector<ParamGroup> groups, AdamOptions options);
  std::string name() const override;  // "adam", "adamw", "nadam" or "radam"
  void step() override;

 protected:
  std::vector<std::string> scalar_state_names() const override { return {"step", "mu_product"}; }

 private:
  AdamOptions options_;
};

// The per-step numbers that are the same for every element of a parameter,
// computed once on the host from the parameter's step count t (1 on the first step).
struct AdamStepScalars {
  AdamVariant variant = AdamVariant::adam;
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  bool amsgrad = false;
  double bias_correction1 = 1;  // 1 - beta1^t
  double bias_correction2 = 1;  // 1 - beta2^t
  double nadam_grad_coefficient = 0;     // lr (1 - mu_t) / (1 - mu_1 ... mu_t)
  double nadam_exp_avg_coefficient = 0;  // lr mu_{t+1} / (1 - mu_1 ... mu_{t+1})
  double radam_rectification = 0;        // r_t when rho_t > 5, else 0 (an unadapted step)
};

// The RAdam rectification term r_t for step t, or 0 when rho_t <= 5.
double radam_rectification(double beta2, double step);
// NAdam's mu_t = beta1 (1 - 0.5 * 0.96^(t psi)).
double nadam_mu(double beta1, double momentum_decay, double step);

namespace cpu {
// param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq: (n), all the same dtype;
// max_exp_avg_sq is only read with amsgrad (nullptr otherwise). Updates param,
// exp_avg, exp_avg_sq (and max_exp_avg_sq) in place; math in double.
template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
               const AdamStepScalars& s);
}  // namespace cpu
namespace cuda {
// The same update as one fused kernel (kernels/optim_adam.cu), math in f32.
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const Tensor& max_exp_avg_sq, const AdamStepScalars& s);
}  // namespace cuda

}  // namespace kiln::optim
