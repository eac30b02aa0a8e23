// Fibers for the emulated GPU (see fiber.h for why they are hand-written).
//
// x86-64 System V: a function may clobber every register except rbx, rbp, r12-r15
// and rsp, plus the control bits of MXCSR and the x87 control word. So a switch,
// being a function call, saves exactly those: it pushes them on the running stack,
// stores rsp, loads the other context's rsp, pops its registers and returns into it.
//
// A new fiber's stack is laid out as if it had been switched away from just
// before kiln_fiber_trampoline: the switch pops zeros into the registers (entry and
// argument travel in r12/r13) and "returns" into the trampoline, which calls
// entry(argument) with the stack 16-byte aligned as the ABI requires.
#include "emulator/src/fiber.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define KILN_EMULATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_EMULATOR_ASAN 1
#endif
#endif
#ifdef KILN_EMULATOR_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace kiln::emulator {

namespace {

#ifdef KILN_EMULATOR_ASAN
constexpr size_t kStackBytes = size_t{512} << 10;  // ASan's redzones make frames several times larger
#else
constexpr size_t kStackBytes = size_t{128} << 10;
#endif
constexpr size_t kGuardBytes = 4096;

}  // namespace

// ---- stacks
FiberStack StackPool::acquire() {
  if (!free_.empty()) {
    const FiberStack stack = free_.back();
    free_.pop_back();
    return stack;
  }
  void* memory = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::fprintf(stderr, "kiln emulator: cannot map a %zu KiB fiber stack\n", kStackBytes >> 10);
    std::abort();  // no way to run the kernel, and no caller to report to mid-launch
  }
  mprotect(memory, kGuardBytes, PROT_NONE);  // an overflowing fiber faults instead of corrupting
  return FiberStack{static_cast<char*>(memory) + kGuardBytes, kStackBytes};
}

void StackPool::release(FiberStack stack) { free_.push_back(stack); }

void StackPool::release_abandoned(FiberStack stack) {
#ifdef KILN_EMULATOR_ASAN
  ASAN_UNPOISON_MEMORY_REGION(stack.base, stack.size);
#endif
  free_.push_back(stack);
}

StackPool::~StackPool() {
  for (const FiberStack& stack : free_) munmap(stack.base - kGuardBytes, stack.size + kGuardBytes);
}

// ---- the switch
#if defined(__x86_64__)

extern "C" void kiln_fiber_switch(void** save_stack_pointer, void* load_stack_pointer);
extern "C" void kiln_fiber_trampoline();

asm(R"(
  .pushsection .text
  .globl kiln_fiber_switch
  .type kiln_fiber_switch, @function
kiln_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size kiln_fiber_switch, .-kiln_fiber_switch

  .globl kiln_fiber_trampoline
  .type kiln_fiber_trampoline, @function
kiln_fiber_trampoline:
  movq %r13, %rdi
  callq *%r12
  ud2
  .size kiln_fiber_trampoline, .-kiln_fiber_trampoline
  .popsection
)");

void fiber_prepare(FiberContext& fiber, FiberStack stack, void (*entry)(void*), void* argument) {
  uintptr_t top = reinterpret_cast<uintptr_t>(stack.base + stack.size) & ~uintptr_t{15};
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = reinterpret_cast<uint64_t>(&kiln_fiber_trampoline);  // "returned" into; rsp is then 16-aligned
  *--sp = 0;                                                     // rbp
  *--sp = 0;                                                     // rbx
  *--sp = reinterpret_cast<uint64_t>(entry);                     // r12
  *--sp = reinterpret_cast<uint64_t>(argument);                  // r13
  *--sp = 0;                                                     // r14
  *--sp = 0;                                                     // r15
  *--sp = uint64_t{0x1F80} | (uint64_t{0x037F} << 32);           // default MXCSR, x87 control word
  fiber.stack_pointer = sp;
  fiber.stack_bottom = stack.base;
  fiber.stack_size = stack.size;
}

static void raw_switch(FiberContext& from, FiberContext& to) { kiln_fiber_switch(&from.stack_pointer, to.stack_pointer); }

#else  // ucontext fallback

void fiber_prepare(FiberContext& fiber, FiberStack stack, void (*entry)(void*), void* argument) {
  if (!fiber.ucontext) fiber.ucontext = new ucontext_t;
  ucontext_t* context = static_cast<ucontext_t*>(fiber.ucontext);
  getcontext(context);
  context->uc_stack.ss_sp = stack.base;
  context->uc_stack.ss_size = stack.size;
  context->uc_link = nullptr;
  makecontext(context, reinterpret_cast<void (*)()>(entry), 1, argument);  // one pointer argument fits on LP64 glibc
  fiber.stack_bottom = stack.base;
  fiber.stack_size = stack.size;
}

static void raw_switch(FiberContext& from, FiberContext& to) {
  if (!from.ucontext) from.ucontext = new ucontext_t;
  swapcontext(static_cast<ucontext_t*>(from.ucontext), static_cast<ucontext_t*>(to.ucontext));
}

#endif

void fiber_switch(FiberContext& from, FiberContext& to, bool from_finished) {
#ifdef KILN_EMULATOR_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &fake_stack, to.stack_bottom, to.stack_size);
  raw_switch(from, to);
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
  (void)from_finished;
  raw_switch(from, to);
#endif
}

void fiber_started(FiberContext& scheduler) {
#ifdef KILN_EMULATOR_ASAN
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  scheduler.stack_bottom = bottom;  // the host thread's own stack, learnt on the first switch
  scheduler.stack_size = size;
#else
  (void)scheduler;
#endif
}

}  // namespace kiln::emulator
