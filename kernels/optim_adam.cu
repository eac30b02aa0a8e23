// Fused Adam-family update (torch.optim Adam, AdamW, NAdam, RAdam), one pass over
// each parameter. Per element, with the per-step scalars from adam_step_scalars()
// (engine/optim/adam_math.h: bias corrections, NAdam's coefficients, RAdam's r_t):
//   adamw: p *= 1 - lr wd            others: g += wd p
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   adam/adamw: v' = amsgrad ? max(vmax, v) : v;  p -= lr / bc1 * m / (sqrt(v') / sqrt(bc2) + eps)
//   nadam:      d = sqrt(v / bc2) + eps;  p -= c_grad g / d;  p -= c_avg m / d
//   radam:      p -= lr m / bc1 * (r_t > 0 ? r_t sqrt(bc2) / (sqrt(v) + eps) : 1)
// Bytes per element: read p, g, m, v; write p, m, v  -> 7 * sizeof(T) (+2 with amsgrad).
// The update is memory-bound: fusing it replaces the ~10 elementwise passes an
// unfused version would make, and the variant switch is uniform across a warp.
// Math in f32 whatever the storage dtype.
//
// Two launchers share the per-element update: adam_step (one launch per
// parameter, scalars computed on the host) and adam_multi_tensor_step (one launch
// per chunk of a whole list, kernels/multi_tensor.cuh). There each block computes
// its parameter's scalars itself, with the same adam_step_scalars() as the host,
// from the step count in device memory, and returns at once when the loss
// scaler's found_inf flag is set; optim_step_count.cu then advances the counts.
// With an lr schedule on the device (Optimizer::set_lr_schedule) the lr is
// base_lr * lr_schedule_factor(t) with t read from device memory too
// (engine/optim/lr_schedule_math.h), so no launch argument changes between steps.
#include <cmath>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/adam.h"
#include "kernels/common.cuh"
#include "kernels/multi_tensor.cuh"

namespace kiln::optim::cuda {

// The per-step scalars, rounded to f32 once so every thread reads the same values.
struct AdamKernelScalars {
  int variant;
  bool amsgrad;
  float lr, beta1, beta2, eps, weight_decay;
  float step_size;              // lr / bc1
  float sqrt_bias_correction2;  // sqrt(bc2)
  float bias_correction1, bias_correction2;
  float nadam_grad_coefficient, nadam_exp_avg_coefficient, radam_rectification;
};

// Host (per-tensor launch) and device (multi-tensor block) alike.
__host__ __device__ inline AdamKernelScalars kernel_scalars(const AdamStepScalars& s) {
  AdamKernelScalars k;
  k.variant = static_cast<int>(s.variant);
  k.amsgrad = s.amsgrad;
  k.lr = static_cast<float>(s.lr);
  k.beta1 = static_cast<float>(s.beta1);
  k.beta2 = static_cast<float>(s.beta2);
  k.eps = static_cast<float>(s.eps);
  k.weight_decay = static_cast<float>(s.weight_decay);
  // Folded in double: 1 - beta^t loses digits in f32 when t is small.
  k.step_size = static_cast<float>(s.lr / s.bias_correction1);
  k.sqrt_bias_correction2 = static_cast<float>(sqrt(s.bias_correction2));
  k.bias_correction1 = static_cast<float>(s.bias_correction1);
  k.bias_correction2 = static_cast<float>(s.bias_correction2);
  k.nadam_grad_coefficient = static_cast<float>(s.nadam_grad_coefficient);
  k.nadam_exp_avg_coefficient = static_cast<float>(s.nadam_exp_avg_coefficient);
  k.radam_rectification = static_cast<float>(s.radam_rectification);
  return k;
}

template <class T>
__device__ __forceinline__ void adam_update_element(T* param, const T* grad, T* exp_avg, T* exp_avg_sq,
                                                    T* max_exp_avg_sq, int64_t i, const AdamKernelScalars& s) {
  using kiln::cuda::from_float;
  using kiln::cuda::to_float;
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

template <class T>
__global__ void adam_step_kernel(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                                 AdamKernelScalars s) {
  KILN_GRID_STRIDE_LOOP(i, n) adam_update_element(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, s);
}

void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const Tensor& max_exp_avg_sq, const AdamStepScalars& s) {
  kiln::cuda::Context& ctx = kiln::cuda::context_for(param);
  kiln::cuda::set_device(ctx);
  const int64_t n = param.numel();
  const AdamKernelScalars k = kernel_scalars(s);
  KILN_DISPATCH_CUDA_FLOAT(param.dtype(), "adam_step", {
    KILN_LAUNCH(kiln::cuda::grid_size(n), kiln::cuda::kThreads, 0, ctx.stream(), adam_step_kernel<scalar_t>)(
        static_cast<scalar_t*>(param.raw_data()), static_cast<const scalar_t*>(grad.raw_data()),
        static_cast<scalar_t*>(exp_avg.raw_data()), static_cast<scalar_t*>(exp_avg_sq.raw_data()),
        max_exp_avg_sq.defined() ? static_cast<scalar_t*>(max_exp_avg_sq.raw_data()) : nullptr, n, k);
  });
  KILN_CHECK_LAUNCH("adam_step");
}

// addresses: param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq (or nullptr), step
// count (double), mu product (double, nadam only, else nullptr).
template <class T>
struct AdamMultiTensorFunctor {
  AdamHyperparameters h;   // h.lr is replaced by lr.lr()
  ScheduledLr lr;          // the host's lr, or the schedule's at the step count in device memory
  const float* found_inf;  // nullptr: never skip

  __device__ void operator()(void* const* addresses, int64_t begin, int64_t end,
                             const kiln::cuda::MultiTensorBlockInfo&) const {
    if (found_inf && *found_inf != 0.0f) return;
    // Every thread derives the same scalars (a few double pow()s, next to a
    // 65536-element chunk): no shared memory and no barrier needed.
    const double step = *static_cast<const double*>(addresses[5]) + 1;
    const double* mu_product = static_cast<const double*>(addresses[6]);
    AdamHyperparameters group = h;
    group.lr = lr.lr();
    const AdamKernelScalars s = kernel_scalars(adam_step_scalars(group, step, mu_product ? *mu_product : 1.0));
    T* param = static_cast<T*>(addresses[0]);
    const T* grad = static_cast<const T*>(addresses[1]);
    T* exp_avg = static_cast<T*>(addresses[2]);
    T* exp_avg_sq = static_cast<T*>(addresses[3]);
    T* max_exp_avg_sq = static_cast<T*>(addresses[4]);
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
      adam_update_element(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, s);
  }
};

void adam_multi_tensor_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                            const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                            const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& steps,
                            const std::vector<Tensor>& mu_products, const AdamHyperparameters& h,
                            const ScheduledLr& lr, const Tensor& found_inf) {
  if (params.empty()) return;
  const size_t n = params.size();
  const bool nadam = h.variant == AdamVariant::nadam;
  KILN_CHECK(grads.size() == n && exp_avgs.size() == n && exp_avg_sqs.size() == n && steps.size() == n &&
                 max_exp_avg_sqs.size() == (h.amsgrad ? n : 0) && mu_products.size() == (nadam ? n : 0),
             "adam_multi_tensor_step: expected one gradient and one of each state per parameter (", n,
             " parameters)");
  kiln::cuda::Context& ctx = kiln::cuda::context_for(params.front());
  kiln::cuda::set_device(ctx);
  std::vector<void*> lists[7];
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < n; ++i) {
    lists[0].push_back(params[i].raw_data());
    lists[1].push_back(grads[i].raw_data());
    lists[2].push_back(exp_avgs[i].raw_data());
    lists[3].push_back(exp_avg_sqs[i].raw_data());
    lists[4].push_back(h.amsgrad ? max_exp_avg_sqs[i].raw_data() : nullptr);
    lists[5].push_back(steps[i].raw_data());
    lists[6].push_back(nadam ? mu_products[i].raw_data() : nullptr);
    sizes.push_back(params[i].numel());
  }
  const float* flag = found_inf.defined() ? static_cast<const float*>(found_inf.raw_data()) : nullptr;
  KILN_DISPATCH_CUDA_FLOAT(params.front().dtype(), "adam_multi_tensor_step", {
    kiln::cuda::multi_tensor_apply<7>(lists, sizes, AdamMultiTensorFunctor<scalar_t>{h, lr, flag}, ctx.stream(),
                                      "adam_multi_tensor_step");
  });
  // Only now, after every block has read the old counts.
  advance_step_counts(steps, mu_products, h.beta1, h.momentum_decay, found_inf);
}

}  // namespace kiln::optim::cuda
