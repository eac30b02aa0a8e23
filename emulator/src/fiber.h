// Fibers: the emulated GPU runs each CUDA thread of a block as a fiber, a function
// with a stack of its own that can stop in the middle (at __syncthreads or a warp
// shuffle) and be resumed later, all on one host thread.
//
// The switch is hand-written (fiber.cpp): it saves the callee-saved registers and
// the stack pointer of the running code and loads those of the other. ucontext's
// swapcontext would also save the signal mask with a system call on every switch,
// tens of times slower, and a block of 1024 threads switches thousands of times.
// Other architectures than x86-64 fall back to ucontext.
//
// Under AddressSanitizer every switch is announced to ASan
// (__sanitizer_start/finish_switch_fiber), which otherwise takes the fiber's stack
// for a stack overflow and reports garbage.
#pragma once
#include <cstddef>
#include <vector>

namespace kiln::emulator {

struct FiberStack {
  char* base = nullptr;  // lowest usable address (a guard page lies below it)
  size_t size = 0;
};

// Stacks are mmap'd once and reused: a thread that runs to its end without ever
// waiting hands its stack straight to the next thread, so a kernel without
// barriers touches one stack only.
class StackPool {
 public:
  FiberStack acquire();
  void release(FiberStack stack);
  // After a block was abandoned half-way (an error), its stacks may carry ASan's
  // poisoned frames: clean them before reuse.
  void release_abandoned(FiberStack stack);
  ~StackPool();

 private:
  std::vector<FiberStack> free_;
};

// A suspended execution: what fiber_switch saves and restores.
struct FiberContext {
  void* stack_pointer = nullptr;
  const void* stack_bottom = nullptr;  // for ASan: the stack this context runs on
  size_t stack_size = 0;
#if !defined(__x86_64__)
  void* ucontext = nullptr;  // ucontext_t*, owned by fiber.cpp
#endif
};

// Prepares `fiber` to start running entry(argument) on `stack` at its first switch.
void fiber_prepare(FiberContext& fiber, FiberStack stack, void (*entry)(void*), void* argument);

// Saves the running context in `from` and continues `to`. Returns when someone
// switches back to `from`. `from_finished`: the running fiber will never be
// resumed (ASan then drops its bookkeeping).
void fiber_switch(FiberContext& from, FiberContext& to, bool from_finished = false);

// Called first thing by a fiber's entry function: completes the switch that started it.
void fiber_started(FiberContext& scheduler);

}  // namespace kiln::emulator
