// The lr schedule evaluated on the device for a range of steps:
//   out[i] = f32(base_lr * lr_schedule_factor(schedule, first_step + i))
// with ScheduledLr::lr(), the very expression the fused SGD/Adam multi-tensor
// steps evaluate per block (kernels/optim_sgd.cu, kernels/optim_adam.cu), so a
// table of it is what those kernels would use at each of these steps. It lets a
// test compare the device schedule with the host's over many thousands of steps
// in one launch, and a report plot the lrs a run will see.
// Math: a few dozen double flops per element (no libm calls, engine/optim/lr_schedule_math.h).
// Bytes: 4 per element written, nothing read (the schedule travels in the arguments).
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/optim/optimizer.h"
#include "kernels/common.cuh"

namespace kiln::optim::cuda {

// `lr` arrives with step == nullptr; each thread points it at its own step.
__global__ void lr_schedule_values_kernel(ScheduledLr lr, double first_step, float* out, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const double step = first_step + static_cast<double>(i);
    lr.step = &step;
    out[i] = static_cast<float>(lr.lr());
  }
}

void lr_schedule_values(const LrScheduleParams& schedule, double base_lr, int64_t first_step, const Tensor& out) {
  KILN_CHECK(out.dtype() == DType::f32 && out.dim() == 1 && out.device().is_cuda(),
             "lr_schedule_values: out must be a 1-D f32 tensor on a CUDA device, got ", out.describe());
  KILN_CHECK(first_step >= 0, "lr_schedule_values: first_step must be >= 0, got ", first_step);
  kiln::cuda::Context& ctx = kiln::cuda::context_for(out);
  kiln::cuda::set_device(ctx);
  const int64_t n = out.numel();
  if (n == 0) return;
  KILN_LAUNCH(kiln::cuda::grid_size(n), kiln::cuda::kThreads, 0, ctx.stream(), lr_schedule_values_kernel)(
      ScheduledLr{schedule, base_lr, 0.0, nullptr}, static_cast<double>(first_step),
      static_cast<float*>(out.raw_data()), n);
  KILN_CHECK_LAUNCH("lr_schedule_values");
}

}  // namespace kiln::optim::cuda
