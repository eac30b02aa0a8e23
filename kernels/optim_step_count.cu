// The device-side bookkeeping of a multi-tensor optimizer step: per-parameter step
// counts (and NAdam's running product of mu_t) advance after the update launches,
// and the optimizer's count of steps skipped for inf/nan gradients. These stay on
// the device so that a step the loss scaler skips (found_inf set) needs no host
// read: the kernels look at the flag themselves.
//   unless found_inf:  step += 1;  nadam: P = f32(P) * f32(mu_t) with t the new step
//   count_skipped_step: skipped += (found_inf != 0)
//   advance_lr_step:    t += 1 (the lr schedule's step, counted whether skipped or not)
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/adam_math.h"
#include "engine/optim/optimizer.h"
#include "kernels/multi_tensor.cuh"

namespace kiln::optim::cuda {

// addresses: step count (double), mu product (double, or nullptr). Each tensor
// has size 1, so one block a parameter and thread 0 does the work.
struct AdvanceStepCountsFunctor {
  AdamHyperparameters nadam;  // beta1 and momentum_decay are read
  const float* found_inf;

  __device__ void operator()(void* const* addresses, int64_t, int64_t, const kiln::cuda::MultiTensorBlockInfo&) const {
    if (threadIdx.x != 0 || (found_inf && *found_inf != 0.0f)) return;
    double* step = static_cast<double*>(addresses[0]);
    double* mu_product = static_cast<double*>(addresses[1]);
    const double t = *step + 1;
    *step = t;
    if (mu_product) *mu_product = nadam_mu_product_after(nadam, t, *mu_product);
  }
};

void advance_step_counts(const std::vector<Tensor>& steps, const std::vector<Tensor>& mu_products, double beta1,
                         double momentum_decay, const Tensor& found_inf) {
  if (steps.empty()) return;
  KILN_CHECK(mu_products.empty() || mu_products.size() == steps.size(), "advance_step_counts: ",
             mu_products.size(), " mu products for ", steps.size(), " step counts");
  kiln::cuda::Context& ctx = kiln::cuda::context_for(steps.front());
  kiln::cuda::set_device(ctx);
  std::vector<void*> lists[2];
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < steps.size(); ++i) {
    KILN_CHECK(steps[i].dtype() == DType::f64 && steps[i].numel() == 1, "advance_step_counts: step count ", i,
               " must be a one-element f64 tensor, got ", steps[i].describe());
    lists[0].push_back(steps[i].raw_data());
    lists[1].push_back(mu_products.empty() ? nullptr : mu_products[i].raw_data());
    sizes.push_back(1);
  }
  AdamHyperparameters nadam;
  nadam.beta1 = beta1;
  nadam.momentum_decay = momentum_decay;
  const float* flag = found_inf.defined() ? static_cast<const float*>(found_inf.raw_data()) : nullptr;
  kiln::cuda::multi_tensor_apply<2>(lists, sizes, AdvanceStepCountsFunctor{nadam, flag}, ctx.stream(),
                                    "advance_step_counts");
}

__global__ void count_skipped_step_kernel(const float* found_inf, double* steps_skipped) {
  if (*found_inf != 0.0f) *steps_skipped += 1;
}

void count_skipped_step(const Tensor& found_inf, const Tensor& steps_skipped) {
  KILN_CHECK(found_inf.dtype() == DType::f32 && steps_skipped.dtype() == DType::f64 &&
                 found_inf.device() == steps_skipped.device(),
             "count_skipped_step: expected an f32 flag and an f64 count on one device, got ", found_inf.describe(),
             " and ", steps_skipped.describe());
  kiln::cuda::Context& ctx = kiln::cuda::context_for(found_inf);
  kiln::cuda::set_device(ctx);
  KILN_LAUNCH(1, 1, 0, ctx.stream(), count_skipped_step_kernel)(static_cast<const float*>(found_inf.raw_data()),
                                                      static_cast<double*>(steps_skipped.raw_data()));
  KILN_CHECK_LAUNCH("count_skipped_step");
}

__global__ void advance_lr_step_kernel(double* counter) { *counter += 1; }

void advance_lr_step(const Tensor& counter) {
  KILN_CHECK(counter.dtype() == DType::f64 && counter.numel() == 1 && counter.device().is_cuda(),
             "advance_lr_step: expected a one-element f64 counter on a CUDA device, got ", counter.describe());
  kiln::cuda::Context& ctx = kiln::cuda::context_for(counter);
  kiln::cuda::set_device(ctx);
  KILN_LAUNCH(1, 1, 0, ctx.stream(), advance_lr_step_kernel)(static_cast<double*>(counter.raw_data()));
  KILN_CHECK_LAUNCH("advance_lr_step");
}

}  // namespace kiln::optim::cuda
