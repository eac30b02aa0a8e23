// The device half of dynamic loss scaling (engine/optim/loss_scaler.h), after
// torch's _amp_foreach_non_finite_check_and_unscale_ and _amp_update_scale_:
//   unscale_grads:  g *= 1 / S for every gradient (one multi-tensor launch per
//                   chunk); found_inf = 1 when any result is inf or nan
//   update_scale:   found_inf ? (skipped += 1, good = 0, S *= backoff)
//                             : (good += 1; good >= interval ? (S *= growth, good = 0))
// Nothing is read back: the optimizer's kernels read found_inf, and the host
// reads S and the counts once per epoch.
#include <cmath>

#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/loss_scaler.h"
#include "engine/optim/optimizer.h"
#include "kernels/common.cuh"
#include "kernels/multi_tensor.cuh"

namespace kiln::optim::cuda {

template <class T>
struct UnscaleFunctor {
  const float* scale;
  float* found_inf;

  __device__ void operator()(void* const* addresses, int64_t begin, int64_t end,
                             const kiln::cuda::MultiTensorBlockInfo&) const {
    // 1/S in double, then rounded, as torch's inv_scale = scale.double().reciprocal().float().
    const float inverse = static_cast<float>(1.0 / static_cast<double>(*scale));
    T* grad = static_cast<T*>(addresses[0]);
    bool non_finite = false;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const T unscaled = kiln::cuda::from_float<T>(kiln::cuda::to_float(grad[i]) * inverse);
      grad[i] = unscaled;
      non_finite = non_finite || !isfinite(kiln::cuda::to_float(unscaled));
    }
    // Every writer stores the same 1, so the race between blocks is harmless.
    if (non_finite) *found_inf = 1.0f;
  }
};

void unscale_grads(const std::vector<Tensor>& grads, const Tensor& scale, const Tensor& found_inf) {
  KILN_CHECK(scale.dtype() == DType::f32 && found_inf.dtype() == DType::f32 && scale.numel() == 1 &&
                 found_inf.numel() == 1,
             "unscale_grads: expected one-element f32 scale and flag, got ", scale.describe(), " and ",
             found_inf.describe());
  kiln::cuda::Context& ctx = kiln::cuda::context_for(found_inf);
  kiln::cuda::set_device(ctx);
  for (const std::vector<Tensor>& list : split_by_device_and_dtype(grads)) {
    KILN_CHECK(list.front().device() == found_inf.device(), "unscale_grads: a gradient is on ",
               list.front().device().to_string(), ", the scaler's flag on ", found_inf.device().to_string());
    std::vector<void*> lists[1];
    std::vector<int64_t> sizes;
    for (const Tensor& g : list) {
      lists[0].push_back(g.raw_data());
      sizes.push_back(g.numel());
    }
    const float* s = static_cast<const float*>(scale.raw_data());
    float* flag = static_cast<float*>(found_inf.raw_data());
    KILN_DISPATCH_CUDA_FLOAT(list.front().dtype(), "unscale_grads", {
      kiln::cuda::multi_tensor_apply<1>(lists, sizes, UnscaleFunctor<scalar_t>{s, flag}, ctx.stream(),
                                        "unscale_grads");
    });
  }
}

__global__ void update_scale_kernel(float* scale, double* good_steps, double* skipped_steps, const float* found_inf,
                                    double growth_factor, double backoff_factor, int growth_interval) {
  if (*found_inf != 0.0f) {
    *skipped_steps += 1;
    *good_steps = 0;
    *scale = static_cast<float>(static_cast<double>(*scale) * backoff_factor);
  } else {
    const double good = *good_steps + 1;
    if (good >= growth_interval) {
      *scale = static_cast<float>(static_cast<double>(*scale) * growth_factor);
      *good_steps = 0;
    } else {
      *good_steps = good;
    }
  }
}

void update_scale(const Tensor& scale, const Tensor& good_steps, const Tensor& skipped_steps, const Tensor& found_inf,
                  const LossScalerOptions& options) {
  KILN_CHECK(scale.dtype() == DType::f32 && good_steps.dtype() == DType::f64 && skipped_steps.dtype() == DType::f64 &&
                 found_inf.dtype() == DType::f32,
             "update_scale: expected an f32 scale and flag and f64 counts");
  kiln::cuda::Context& ctx = kiln::cuda::context_for(scale);
  kiln::cuda::set_device(ctx);
  KILN_LAUNCH(1, 1, 0, ctx.stream(), update_scale_kernel)(
      static_cast<float*>(scale.raw_data()), static_cast<double*>(good_steps.raw_data()),
      static_cast<double*>(skipped_steps.raw_data()), static_cast<const float*>(found_inf.raw_data()),
      options.growth_factor, options.backoff_factor, options.growth_interval);
  KILN_CHECK_LAUNCH("update_scale");
}

}  // namespace kiln::optim::cuda
