// Fused SGD update (torch.optim.SGD semantics), one pass over each parameter:
//   g = grad + wd * p;  b = first ? g : momentum * b + (1 - dampening) * g
//   g = nesterov ? g + momentum * b : b;  p -= lr * g
// Bytes per element: read p, grad, b; write p, b  -> 5 * sizeof(T) (3 without momentum).
// Math in f32 whatever the storage dtype (f32 master weights are the normal case).
//
// Two launchers share the per-element update: sgd_step (one launch per
// parameter, told on the host whether this is the first step) and
// sgd_multi_tensor_step (one launch per chunk of a whole list, kernels/multi_tensor.cuh;
// each block reads its parameter's step count from the device, and every block
// returns at once when the loss scaler's found_inf flag is set). With an lr
// schedule on the device (Optimizer::set_lr_schedule) each block also computes
// lr = base_lr * lr_schedule_factor(t) from the schedule's step count t in device
// memory (engine/optim/lr_schedule_math.h): no launch argument changes per step.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/optimizer.h"
#include "kernels/common.cuh"
#include "kernels/multi_tensor.cuh"

namespace kiln::optim::cuda {

struct SgdKernelScalars {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
};

template <class T>
__device__ __forceinline__ void sgd_update_element(T* param, const T* grad, T* buffer, int64_t i,
                                                   const SgdKernelScalars& s, bool first_step) {
  using kiln::cuda::from_float;
  using kiln::cuda::to_float;
  const float p = to_float(param[i]);
  float g = to_float(grad[i]) + s.weight_decay * p;
  if (buffer) {
    const float b = first_step ? g : s.momentum * to_float(buffer[i]) + (1.0f - s.dampening) * g;
    buffer[i] = from_float<T>(b);
    g = s.nesterov ? g + s.momentum * b : b;
  }
  param[i] = from_float<T>(p - s.lr * g);
}

static SgdKernelScalars kernel_scalars(double lr, double momentum, double dampening, double weight_decay,
                                       bool nesterov) {
  return {static_cast<float>(lr), static_cast<float>(momentum), static_cast<float>(dampening),
          static_cast<float>(weight_decay), nesterov};
}

template <class T>
__global__ void sgd_step_kernel(T* param, const T* grad, T* buffer, int64_t n, SgdKernelScalars s, bool first_step) {
  KILN_GRID_STRIDE_LOOP(i, n) sgd_update_element(param, grad, buffer, i, s, first_step);
}

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buffer, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first_step) {
  kiln::cuda::Context& ctx = kiln::cuda::context_for(param);
  kiln::cuda::set_device(ctx);
  const int64_t n = param.numel();
  const SgdKernelScalars s = kernel_scalars(lr, momentum, dampening, weight_decay, nesterov);
  KILN_DISPATCH_CUDA_FLOAT(param.dtype(), "sgd_step", {
    KILN_LAUNCH(kiln::cuda::grid_size(n), kiln::cuda::kThreads, 0, ctx.stream(), sgd_step_kernel<scalar_t>)(
        static_cast<scalar_t*>(param.raw_data()), static_cast<const scalar_t*>(grad.raw_data()),
        buffer.defined() ? static_cast<scalar_t*>(buffer.raw_data()) : nullptr, n, s, first_step);
  });
  KILN_CHECK_LAUNCH("sgd_step");
}

// addresses: param, grad, momentum buffer (or nullptr), step count (double).
template <class T>
struct SgdMultiTensorFunctor {
  SgdKernelScalars s;      // s.lr is replaced by lr.lr(), rounded to f32 as kernel_scalars() does
  ScheduledLr lr;          // the host's lr, or the schedule's at the step count in device memory
  const float* found_inf;  // nullptr: never skip

  __device__ void operator()(void* const* addresses, int64_t begin, int64_t end,
                             const kiln::cuda::MultiTensorBlockInfo&) const {
    if (found_inf && *found_inf != 0.0f) return;
    SgdKernelScalars scalars = s;
    scalars.lr = static_cast<float>(lr.lr());  // a few dozen double flops per thread, next to a 65536-element chunk
    T* param = static_cast<T*>(addresses[0]);
    const T* grad = static_cast<const T*>(addresses[1]);
    T* buffer = static_cast<T*>(addresses[2]);
    const bool first_step = *static_cast<const double*>(addresses[3]) == 0.0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
      sgd_update_element(param, grad, buffer, i, scalars, first_step);
  }
};

static void* address_of(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

void sgd_multi_tensor_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& momentum_buffers, const std::vector<Tensor>& steps,
                           const ScheduledLr& lr, double momentum, double dampening, double weight_decay,
                           bool nesterov, const Tensor& found_inf) {
  if (params.empty()) return;
  KILN_CHECK(grads.size() == params.size() && steps.size() == params.size() &&
                 (momentum_buffers.empty() || momentum_buffers.size() == params.size()),
             "sgd_multi_tensor_step: expected one gradient, step count (and momentum buffer) per parameter, got ",
             params.size(), " parameters, ", grads.size(), " gradients, ", steps.size(), " step counts, ",
             momentum_buffers.size(), " buffers");
  kiln::cuda::Context& ctx = kiln::cuda::context_for(params.front());
  kiln::cuda::set_device(ctx);
  std::vector<void*> lists[4];
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < params.size(); ++i) {
    lists[0].push_back(params[i].raw_data());
    lists[1].push_back(grads[i].raw_data());
    lists[2].push_back(momentum_buffers.empty() ? nullptr : momentum_buffers[i].raw_data());
    lists[3].push_back(steps[i].raw_data());
    sizes.push_back(params[i].numel());
  }
  const SgdKernelScalars s = kernel_scalars(lr.host_lr, momentum, dampening, weight_decay, nesterov);
  const float* flag = static_cast<const float*>(address_of(found_inf));
  KILN_DISPATCH_CUDA_FLOAT(params.front().dtype(), "sgd_multi_tensor_step", {
    kiln::cuda::multi_tensor_apply<4>(lists, sizes, SgdMultiTensorFunctor<scalar_t>{s, lr, flag}, ctx.stream(),
                                      "sgd_multi_tensor_step");
  });
  // Only now, after every block has read the old counts.
  advance_step_counts(steps, {}, 0, 0, found_inf);
}

}  // namespace kiln::optim::cuda
