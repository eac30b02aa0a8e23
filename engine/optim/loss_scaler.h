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
#pragma once
#include <cstdint>

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

  // loss * scale (differentiable): call backward() on this instead of on the loss.
  Tensor scale(const Tensor& loss) const;
  // Divides the gradient of every parameter of `optimizer` by the scale and
  // remembers whether all were finite. Once per step; step() calls it if needed.
  // Returns true when every gradient is finite.
  bool unscale(Optimizer& optimizer);
  // Unscales (if not yet), then runs optimizer.step() when every gradient is finite
  // or skips it (counted) when one is not, and updates the scale. Returns whether
  // the optimizer stepped.
  bool step(Optimizer& optimizer);

  double current_scale() const { return scale_; }
  int64_t skipped_steps() const { return skipped_steps_; }  // since construction (or restore)
  int good_steps_in_a_row() const { return good_steps_; }
  // For checkpoints: the scale and the good-step count continue after a resume.
  void restore(double scale, int good_steps_in_a_row, int64_t skipped_steps);

 private:
  LossScalerOptions options_;
  double scale_;
  int good_steps_ = 0;
  int64_t skipped_steps_ = 0;
  bool unscaled_ = false;  // unscale() ran in this step
  bool finite_ = true;     // its verdict
};

}  // namespace kiln::optim
