#include "engine/autograd/grad_mode.h"

namespace kiln {

namespace {
thread_local bool grad_enabled = true;
}

bool grad_mode_enabled() { return grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }

}  // namespace kiln
