// Fused SGD update (torch.optim.SGD semantics), one pass over each parameter:
//   g = grad + wd * p;  b = first ? g : momentum * b + (1 - dampening) * g
//   g = nesterov ? g + momentum * b : b;  p -= lr * g
// Bytes per element: read p, grad, b; write p, b  -> 5 * sizeof(T) (3 without momentum).
// Math in f32 whatever the storage dtype (f32 master weights are the normal case).
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/optimizer.h"
#include "kernels/common.cuh"

namespace kiln::optim::cuda {

template <class T>
__global__ void sgd_step_kernel(T* param, const T* grad, T* buffer, int64_t n, float lr, float momentum,
                                float dampening, float weight_decay, bool nesterov, bool first_step) {
  using kiln::cuda::from_float;
  using kiln::cuda::to_float;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float p = to_float(param[i]);
    float g = to_float(grad[i]) + weight_decay * p;
    if (buffer) {
      const float b = first_step ? g : momentum * to_float(buffer[i]) + (1.0f - dampening) * g;
      buffer[i] = from_float<T>(b);
      g = nesterov ? g + momentum * b : b;
    }
    param[i] = from_float<T>(p - lr * g);
  }
}

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buffer, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first_step) {
  kiln::cuda::Context& ctx = kiln::cuda::context_for(param);
  kiln::cuda::set_device(ctx);
  const int64_t n = param.numel();
  KILN_DISPATCH_CUDA_FLOAT(param.dtype(), "sgd_step", {
    sgd_step_kernel<scalar_t><<<kiln::cuda::grid_size(n), kiln::cuda::kThreads, 0, ctx.stream()>>>(
        static_cast<scalar_t*>(param.raw_data()), static_cast<const scalar_t*>(grad.raw_data()),
        buffer.defined() ? static_cast<scalar_t*>(buffer.raw_data()) : nullptr, n, static_cast<float>(lr),
        static_cast<float>(momentum), static_cast<float>(dampening), static_cast<float>(weight_decay), nesterov,
        first_step);
  });
  KILN_CHECK_LAUNCH("sgd_step");
}

}  // namespace kiln::optim::cuda
