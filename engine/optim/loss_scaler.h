// Dynamic loss scaling for f16 training (Micikevicius et al. 2018, "Mixed Precision
// Training"; torch.amp.GradScaler).
//
// f16 has 5 exponent bits: gradients below ~6e-8 flush to zero. Multiplying the loss
// by a scale S multiplies every gradient by S (backward is linear), lifting small
// gradients into f16's range; the optimizer then sees grad / S. Too large an S
// overflows to inf or nan instead, so S adapts:
//
//   backward of (loss * S)
//   grads /= S;  found_inf = any gradient element is inf or nan
//   found_inf:  skip the optimizer step (the weights stay), S *= backoff (0.5),
//               count the skipped step, restart the good-step count
//   otherwise:  optimizer.step(); after growth_interval good steps in a row,
//               S *= growth (2)
//
// bf16 has f32's exponent range and needs none of this. The usual loop:
//
//   scaler.scale(loss).backward();
//   scaler.unscale(optimizer);             // optional: before gradient clipping
//   clip_grad_norm(params, max_norm);
//   scaler.step(optimizer);                // unscales if not done yet; steps or skips; updates S
//
// Nothing here reads the device in the loop (torch's _amp_foreach_non_finite_check_and_unscale_
// and _amp_update_scale_): S, the good-step count, the skipped-step count and the
// found_inf flag are 0-d tensors on the gradients' device. unscale() multiplies the
// gradients by 1/S and ORs found_inf in one multi-tensor launch per chunk; the
// optimizer's kernels skip the update themselves when found_inf is set; a one-thread
// kernel updates S and the counts. The getters read the device and are for once
// per epoch (logs, checkpoints). On the CPU the same steps run as host loops.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/optim/optimizer.h"

namespace kiln::optim {

struct LossScalerOptions {
  double initial_scale = 65536.0;  // 2^16, as torch
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int growth_interval = 2000;      // good steps in a row before the scale grows
};

class LossScaler {
 public:
  explicit LossScaler(LossScalerOptions options = {});

  // loss * S (differentiable): call backward() on this instead of on the loss.
  // The scaler's state moves to the loss's device on first use.
  Tensor scale(const Tensor& loss);
  // Multiplies the gradient of every parameter of `optimizer` by 1/S, in place,
  // and sets found_inf() when any result is inf or nan. Once per step; step()
  // calls it if needed.
  void unscale(Optimizer& optimizer);
  // Unscales (if not yet), then optimizer.step(found_inf()): skipped when a
  // gradient was not finite. Then updates S and the counts (the table above).
  // Whether the step was taken is known on the device only: skipped_steps() tells.
  void step(Optimizer& optimizer);

  // The last unscale's verdict: a 0-d f32 tensor, 1 when a gradient was inf or nan.
  const Tensor& found_inf() const { return found_inf_; }
  // These read the device (one synchronisation each).
  double current_scale() const;
  int64_t skipped_steps() const;  // since construction (or restore)
  int good_steps_in_a_row() const;
  // For checkpoints: the scale and the good-step count continue after a resume.
  void restore(double scale, int good_steps_in_a_row, int64_t skipped_steps);

 private:
  void place_on(const Device& device);  // moves the state tensors there
  LossScalerOptions options_;
  Tensor scale_;          // 0-d f32: S (f32 like torch's; S stays a power of 2 times the initial scale)
  Tensor good_steps_;     // 0-d f64: good steps in a row
  Tensor skipped_steps_;  // 0-d f64: steps skipped
  Tensor found_inf_;      // 0-d f32: the flag unscale() writes
  bool unscaled_ = false;  // unscale() ran in this step
};

namespace cpu {
// grads[i] *= 1 / scale for each; returns whether any result is inf or nan.
bool unscale_grads(const std::vector<Tensor>& grads, double scale);
}  // namespace cpu
namespace cuda {
// The same, one multi-tensor launch per chunk and dtype (kernels/optim_amp.cu):
// found_inf (0-d f32) is set to 1 when a result is inf or nan, never cleared here.
void unscale_grads(const std::vector<Tensor>& grads, const Tensor& scale, const Tensor& found_inf);
// The scale update of LossScaler::step in one thread on the device.
void update_scale(const Tensor& scale, const Tensor& good_steps, const Tensor& skipped_steps, const Tensor& found_inf,
                  const LossScalerOptions& options);
}  // namespace cuda

}  // namespace kiln::optim
