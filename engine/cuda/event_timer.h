// Timing GPU work with CUDA events. start() and stop() record an event on the
// context's stream, so each interval is the time the device spent on the work
// queued between them, not the host's view of it; and no step waits for the device:
// elapsed_ms() synchronises once, on the last event, and reads every interval.
//
//   cuda::EventTimer timer(ctx);
//   for (...) { timer.start(); step(); timer.stop(); }
//   std::vector<double> ms = timer.elapsed_ms();   // one per start/stop pair
#pragma once
#include <cuda_runtime.h>

#include <utility>
#include <vector>

#include "engine/cuda/context.h"

namespace kiln::cuda {

class EventTimer {
 public:
  explicit EventTimer(Context& ctx) : ctx_(ctx) {}
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  void start();  // records a start event on the stream
  void stop();   // records the matching stop event
  // Waits for the last stop event; the milliseconds of every start/stop pair, in order.
  std::vector<double> elapsed_ms();

 private:
  Context& ctx_;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> intervals_;
  bool open_ = false;  // start() called, stop() not yet
};

}  // namespace kiln::cuda
