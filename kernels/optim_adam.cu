// Fused Adam-family update (torch.optim Adam, AdamW, NAdam, RAdam), one pass over
// each parameter. Per element, with the per-step scalars computed on the host
// (engine/optim/adam.cpp: bias corrections, NAdam's coefficients, RAdam's r_t):
//   adamw: p *= 1 - lr wd            others: g += wd p
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   adam/adamw: v' = amsgrad ? max(vmax, v) : v;  p -= lr / bc1 * m / (sqrt(v') / sqrt(bc2) + eps)
//   nadam:      d = sqrt(v / bc2) + eps;  p -= c_grad g / d;  p -= c_avg m / d
//   radam:      p -= lr m / bc1 * (r_t > 0 ? r_t sqrt(bc2) / (sqrt(v) + eps) : 1)
// Bytes per element: read p, g, m, v; write p, m, v  -> 7 * sizeof(T) (+2 with amsgrad).
// The update is memory-bound: fusing it replaces the ~10 elementwise passes an
// unfused version would make, and the variant switch is uniform across a warp.
// Math in f32 whatever the storage dtype.
#include <cmath>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/adam.h"
#include "kernels/common.cuh"

namespace kiln::optim::cuda {

// The host-side scalars, rounded to f32 once so every thread reads the same values.
struct AdamKernelScalars {
  int variant;
  bool amsgrad;
  float lr, beta1, beta2, eps, weight_decay;
  float step_size;              // lr / bc1
  float sqrt_bias_correction2;  // sqrt(bc2)
  float bias_correction1, bias_correction2;
  float nadam_grad_coefficient, nadam_exp_avg_coefficient, radam_rectification;
};

template <class T>
__global__ void adam_step_kernel(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                                 AdamKernelScalars s) {
  using kiln::cuda::from_float;
  using kiln::cuda::to_float;
  KILN_GRID_STRIDE_LOOP(i, n) {
    float p = to_float(param[i]);
    float g = to_float(grad[i]);
    if (s.variant == static_cast<int>(AdamVariant::adamw))
      p *= 1.0f - s.lr * s.weight_decay;
    else
      g += s.weight_decay * p;
    const float m = s.beta1 * to_float(exp_avg[i]) + (1.0f - s.beta1) * g;
    const float v = s.beta2 * to_float(exp_avg_sq[i]) + (1.0f - s.beta2) * g * g;
    exp_avg[i] = from_float<T>(m);
    exp_avg_sq[i] = from_float<T>(v);
    if (s.variant == static_cast<int>(AdamVariant::nadam)) {
      const float denom = sqrtf(v / s.bias_correction2) + s.eps;
      p -= s.nadam_grad_coefficient * (g / denom);
      p -= s.nadam_exp_avg_coefficient * (m / denom);
    } else if (s.variant == static_cast<int>(AdamVariant::radam)) {
      const float m_hat = m / s.bias_correction1;
      p -= s.radam_rectification > 0
               ? m_hat * s.lr * (s.sqrt_bias_correction2 / (sqrtf(v) + s.eps)) * s.radam_rectification
               : m_hat * s.lr;
    } else {  // adam, adamw
      float v_used = v;
      if (s.amsgrad) {
        v_used = fmaxf(to_float(max_exp_avg_sq[i]), v);
        max_exp_avg_sq[i] = from_float<T>(v_used);
      }
      p -= s.step_size * (m / (sqrtf(v_used) / s.sqrt_bias_correction2 + s.eps));
    }
    param[i] = from_float<T>(p);
  }
}

void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const Tensor& max_exp_avg_sq, const AdamStepScalars& s) {
  kiln::cuda::Context& ctx = kiln::cuda::context_for(param);
  kiln::cuda::set_device(ctx);
  const int64_t n = param.numel();
  AdamKernelScalars k;
  k.variant = static_cast<int>(s.variant);
  k.amsgrad = s.amsgrad;
  k.lr = static_cast<float>(s.lr);
  k.beta1 = static_cast<float>(s.beta1);
  k.beta2 = static_cast<float>(s.beta2);
  k.eps = static_cast<float>(s.eps);
  k.weight_decay = static_cast<float>(s.weight_decay);
  // Folded in double on the host: 1 - beta^t loses digits in f32 when t is small.
  k.step_size = static_cast<float>(s.lr / s.bias_correction1);
  k.sqrt_bias_correction2 = static_cast<float>(std::sqrt(s.bias_correction2));
  k.bias_correction1 = static_cast<float>(s.bias_correction1);
  k.bias_correction2 = static_cast<float>(s.bias_correction2);
  k.nadam_grad_coefficient = static_cast<float>(s.nadam_grad_coefficient);
  k.nadam_exp_avg_coefficient = static_cast<float>(s.nadam_exp_avg_coefficient);
  k.radam_rectification = static_cast<float>(s.radam_rectification);
  KILN_DISPATCH_CUDA_FLOAT(param.dtype(), "adam_step", {
    adam_step_kernel<scalar_t><<<kiln::cuda::grid_size(n), kiln::cuda::kThreads, 0, ctx.stream()>>>(
        static_cast<scalar_t*>(param.raw_data()), static_cast<const scalar_t*>(grad.raw_data()),
        static_cast<scalar_t*>(exp_avg.raw_data()), static_cast<scalar_t*>(exp_avg_sq.raw_data()),
        max_exp_avg_sq.defined() ? static_cast<scalar_t*>(max_exp_avg_sq.raw_data()) : nullptr, n, k);
  });
  KILN_CHECK_LAUNCH("adam_step");
}

}  // namespace kiln::optim::cuda
