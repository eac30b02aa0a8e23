// StepTimer: CUDA events on a GPU, the steady clock on the CPU (see step_timer.h).
#include "engine/core/step_timer.h"

#include <algorithm>

#include "engine/core/check.h"
#include "engine/ops/dispatch.h"
#if KILN_WITH_CUDA
#include "engine/cuda/event_timer.h"
#else
namespace kiln::cuda {
class EventTimer {};  // a CPU-only build never makes one; unique_ptr needs the type complete
}  // namespace kiln::cuda
#endif

namespace kiln {

StepTimer::StepTimer(const Device& device) : device_(device) {
  on_device(
      device, [] {}, [&] { KILN_CUDA_ONLY(events_ = std::make_unique<cuda::EventTimer>(cuda::Context::get(device.index))); });
}

StepTimer::~StepTimer() = default;

void StepTimer::start() {
  on_device(
      device_, [&] { started_ = std::chrono::steady_clock::now(); }, [&] { KILN_CUDA_ONLY(events_->start()); });
}

void StepTimer::stop() {
  on_device(
      device_,
      [&] {
        host_ms_.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count());
      },
      [&] { KILN_CUDA_ONLY(events_->stop()); });
}

std::vector<double> StepTimer::elapsed_ms() {
  std::vector<double> ms = host_ms_;
  on_device(device_, [] {}, [&] { KILN_CUDA_ONLY(ms = events_->elapsed_ms()); });
  return ms;
}

double median(std::vector<double> values) {
  KILN_CHECK(!values.empty(), "median: no values");
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace kiln
