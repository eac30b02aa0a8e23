#include "engine/autograd/grad_mode.h"

namespace kiln {

namespace {
thread_local bool grad_enabled = true;
thread_local bool guided_backprop = false;
}  // namespace

bool grad_mode_enabled() { return grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

bool guided_backprop_enabled() { return guided_backprop; }

GuidedBackpropGuard::GuidedBackpropGuard() : previous_(guided_backprop) { guided_backprop = true; }
GuidedBackpropGuard::~GuidedBackpropGuard() { guided_backprop = previous_; }

}  // namespace kiln
