// Grad mode: whether ops record nodes. On by default; NoGradGuard turns it off for
// its scope (evaluation, optimizer updates, gradient accumulation inside backward).
// The flag is per thread, so a loader thread never changes the trainer's mode.
//
// Guided-backprop mode (Springenberg et al., 2015, "Striving for simplicity"): while
// a GuidedBackpropGuard is alive, the ReLU-family activations (relu, relu6) record
// the guided backward rule instead of their derivative:
//     exact:   grad_input = f'(x) * grad_output
//     guided:  grad_input = f'(x) * max(grad_output, 0)
// i.e. a gradient passes only where the forward input was in the active range AND
// the gradient coming down is positive. The rule is chosen when the op is recorded
// (in forward), so a backward run after the guard has ended still uses it. Also
// per thread. report/visualize.h uses it; training never does.
#pragma once

namespace kiln {

bool grad_mode_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

bool guided_backprop_enabled();

class GuidedBackpropGuard {
 public:
  GuidedBackpropGuard();
  ~GuidedBackpropGuard();
  GuidedBackpropGuard(const GuidedBackpropGuard&) = delete;
  GuidedBackpropGuard& operator=(const GuidedBackpropGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace kiln
