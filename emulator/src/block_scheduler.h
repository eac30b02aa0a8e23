// Runs a kernel's grid on the CPU: every block, one after another; inside a block
// every CUDA thread is a fiber (fiber.h). See block_scheduler.cpp for the rules.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace kiln::emulator {

// The order in which the threads of a block run between two synchronisation points.
// A result that changes with the order is a race: some thread read what another
// wrote without a barrier in between. `make test` runs the GPU suite in two orders.
enum class ThreadOrder { forward, reverse, random };

struct SchedulerOptions {
  ThreadOrder order = ThreadOrder::forward;
  uint64_t seed = 0;  // for ThreadOrder::random
};

// From KILN_EMULATE_ORDER: forward (default), reverse, random or random:SEED.
// Throws nothing: a bad value is reported on stderr and forward is used.
SchedulerOptions scheduler_options_from_environment();

struct GridLaunch {
  LaunchSite site;
  dim3 grid, block;
  std::shared_ptr<void> state;
  void (*thread_body)(void* state);
};

// Runs every block of the launch. Returns cudaSuccess, or cudaErrorLaunchFailure
// with `error` set to a message naming the kernel, the block, the thread, what went
// wrong and the source line.
cudaError_t run_grid(const GridLaunch& launch, const SchedulerOptions& options, std::string& error);

}  // namespace kiln::emulator
