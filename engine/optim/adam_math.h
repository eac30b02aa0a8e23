// The per-step scalars of the Adam family, as one function that both the host
// (engine/optim/adam.cpp: the CPU reference and the per-tensor CUDA path) and the
// device (kernels/optim_adam.cu: the multi-tensor path, which reads each
// parameter's step count from device memory) compile. Sharing the function is
// what makes the two CUDA paths agree: they derive the same numbers from the
// same step count t (1 on the first step), in double:
//   bc1 = 1 - beta1^t                 bc2 = 1 - beta2^t
//   nadam: mu_t = beta1 (1 - 0.5 * 0.96^(t psi))
//          P_t = P_{t-1} mu_t  (rounded to f32 at each multiply, as torch 1.13 does)
//          c_grad = lr (1 - mu_t) / (1 - P_t);  c_avg = lr mu_{t+1} / (1 - P_t mu_t mu_{t+1})  (torch 1.13)
//   radam: rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
//          r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)) if rho_t > 5, else 0
// Header-only and free of kiln types so that nvcc and the host compiler both take it.
#pragma once
#include <cmath>

#ifdef __CUDACC__
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif

namespace kiln::optim {

enum class AdamVariant {
  adam,   // weight decay as L2: g += wd * p
  adamw,  // decoupled weight decay: p *= 1 - lr * wd, g untouched
  nadam,  // Nesterov momentum with the momentum_decay schedule of mu_t
  radam,  // rectified: plain momentum SGD until the variance of v is trustworthy
  count
};
static_assert(static_cast<int>(AdamVariant::count) == 4, "add the new variant to adam_math.h and optim_adam.cu");

// What a group's step needs besides the step count: the same for every parameter.
struct AdamHyperparameters {
  AdamVariant variant = AdamVariant::adam;
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false;
  double momentum_decay = 4e-3;  // nadam's psi
};

// The per-step numbers that are the same for every element of a parameter.
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

// NAdam's mu_t = beta1 (1 - 0.5 * 0.96^(t psi)).
KILN_HOST_DEVICE inline double nadam_mu(double beta1, double momentum_decay, double step) {
  return beta1 * (1.0 - 0.5 * pow(0.96, step * momentum_decay));
}

// The RAdam rectification term r_t for step t, or 0 when rho_t <= 5: below 5 the
// variance of the adaptive term is unbounded (Liu et al. 2019) and the step falls
// back to bias-corrected momentum.
KILN_HOST_DEVICE inline double radam_rectification(double beta2, double step) {
  const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;  // the length of the SMA that v approximates, as t -> inf
  const double beta2_t = pow(beta2, step);
  const double rho_t = rho_inf - 2.0 * step * beta2_t / (1.0 - beta2_t);
  if (rho_t <= 5.0) return 0.0;
  return sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t));
}

// NAdam's running product after step t, from the product before it: torch 1.13
// keeps it in a float32 0-d tensor whatever the parameter dtype, so the product is
// rounded to f32 at each multiply; doing the same keeps f64 runs equal to torch's.
KILN_HOST_DEVICE inline double nadam_mu_product_after(const AdamHyperparameters& h, double step,
                                                      double mu_product_before) {
  return static_cast<float>(mu_product_before) * static_cast<float>(nadam_mu(h.beta1, h.momentum_decay, step));
}

// The scalars of step t (1 on the first) for a parameter whose NAdam product
// before this step is mu_product_before (1 before the first step; unused otherwise).
KILN_HOST_DEVICE inline AdamStepScalars adam_step_scalars(const AdamHyperparameters& h, double step,
                                                          double mu_product_before) {
  AdamStepScalars s;
  s.variant = h.variant;
  s.lr = h.lr;
  s.beta1 = h.beta1;
  s.beta2 = h.beta2;
  s.eps = h.eps;
  s.weight_decay = h.weight_decay;
  s.amsgrad = h.amsgrad;
  s.bias_correction1 = 1.0 - pow(h.beta1, step);
  s.bias_correction2 = 1.0 - pow(h.beta2, step);
  if (h.variant == AdamVariant::nadam) {
    const double mu = nadam_mu(h.beta1, h.momentum_decay, step);
    const double mu_next = nadam_mu(h.beta1, h.momentum_decay, step + 1);
    const float mu_product = static_cast<float>(nadam_mu_product_after(h, step, mu_product_before));
    // torch 1.13 multiplies mu in twice here (mu_product * mu * mu_next, fixed in
    // later versions); kept, since the fixtures are torch 1.13's trajectories.
    const float mu_product_next = mu_product * static_cast<float>(mu) * static_cast<float>(mu_next);
    s.nadam_grad_coefficient = h.lr * (1.0 - mu) / (1.0 - static_cast<double>(mu_product));
    s.nadam_exp_avg_coefficient = h.lr * mu_next / (1.0 - static_cast<double>(mu_product_next));
  }
  if (h.variant == AdamVariant::radam) s.radam_rectification = radam_rectification(h.beta2, step);
  return s;
}

}  // namespace kiln::optim
