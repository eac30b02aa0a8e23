// CUDA event intervals for benchmarks: see event_timer.h.
#include "engine/cuda/event_timer.h"

#include "engine/core/check.h"
#include "engine/cuda/cuda_check.h"

namespace kiln::cuda {

EventTimer::~EventTimer() {
  for (auto& [start, stop] : intervals_) {
    CUDA_CHECK_NOTHROW(cudaEventDestroy(start));  // a destructor reports, never throws
    if (stop) CUDA_CHECK_NOTHROW(cudaEventDestroy(stop));
  }
}

void EventTimer::start() {
  KILN_CHECK(!open_, "EventTimer: start() called twice without stop()");
  set_device(ctx_);
  cudaEvent_t event = nullptr;
  CUDA_CHECK(cudaEventCreate(&event));
  intervals_.emplace_back(event, nullptr);
  CUDA_CHECK(cudaEventRecord(event, ctx_.stream()));
  open_ = true;
}

void EventTimer::stop() {
  KILN_CHECK(open_, "EventTimer: stop() called without start()");
  set_device(ctx_);
  cudaEvent_t& event = intervals_.back().second;
  CUDA_CHECK(cudaEventCreate(&event));
  CUDA_CHECK(cudaEventRecord(event, ctx_.stream()));
  open_ = false;
}

std::vector<double> EventTimer::elapsed_ms() {
  KILN_CHECK(!open_, "EventTimer: elapsed_ms() called between start() and stop()");
  std::vector<double> ms;
  if (intervals_.empty()) return ms;
  CUDA_CHECK(cudaEventSynchronize(intervals_.back().second));
  for (const auto& [start, stop] : intervals_) {
    float interval = 0;
    CUDA_CHECK(cudaEventElapsedTime(&interval, start, stop));
    ms.push_back(interval);
  }
  return ms;
}

}  // namespace kiln::cuda
