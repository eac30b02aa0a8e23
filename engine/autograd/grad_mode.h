// Grad mode: whether ops record nodes. On by default; NoGradGuard turns it off for
// its scope (evaluation, optimizer updates, gradient accumulation inside backward).
// The flag is per thread, so a loader thread never changes the trainer's mode.
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

}  // namespace kiln
