// Times repeated steps on a device, for benchmarks: on a GPU with CUDA events on
// the device's stream (engine/cuda/event_timer.h: device time, no host sync per
// step), on the CPU with the host's steady clock.
//
//   StepTimer timer(device);
//   for (int i = 0; i < steps; ++i) { timer.start(); step(); timer.stop(); }
//   std::vector<double> ms = timer.elapsed_ms();   // one per step
#pragma once
#include <chrono>
#include <memory>
#include <vector>

#include "engine/core/device.h"

namespace kiln {
namespace cuda {
class EventTimer;
}

class StepTimer {
 public:
  explicit StepTimer(const Device& device);
  ~StepTimer();
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;

  void start();
  void stop();
  // The milliseconds of every start/stop pair so far, in order (waits for the GPU).
  std::vector<double> elapsed_ms();

 private:
  Device device_;
  std::unique_ptr<cuda::EventTimer> events_;  // CUDA devices only
  std::chrono::steady_clock::time_point started_;
  std::vector<double> host_ms_;  // CPU intervals
};

// The median of `values` (the upper one of the two middle values for an even count);
// throws on an empty list.
double median(std::vector<double> values);

}  // namespace kiln
