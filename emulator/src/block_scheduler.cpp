// The block scheduler of the emulated GPU: how a grid runs on one CPU thread.
//
// Blocks run one after another. Inside a block every CUDA thread is a fiber, and
// the scheduler works in passes:
//   1. run every runnable thread, in the chosen order (forward, reverse or seeded
//      random), until it reaches a synchronisation point or returns;
//   2. now every thread waits or has exited. Release the warp operations whose
//      lanes have all arrived (computing the shuffle results as PTX defines them);
//      if none could be released, release the barrier, which needs every thread of
//      the block waiting at the same __syncthreads;
//   3. anything else is an error that a GPU would not report (it would hang, or
//      return garbage): a barrier some threads exited before, threads waiting at
//      different barriers, a mask naming an exited or absent lane, a shuffle reading
//      a lane outside its mask, lanes meeting at different warp operations.
// Between two synchronisation points one thread runs from start to end before the
// next one starts, the most extreme schedule a GPU could pick. A missing barrier
// therefore changes the result with the order, and the GPU suite runs in two orders.
//
// Errors name the kernel, the launch site, the block, the thread and the source line
// of the synchronisation call; the runtime reports them as cudaErrorLaunchFailure at
// the launch check (eager streams) or the next synchronisation (deferred streams).
#include "emulator/src/block_scheduler.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "emulator/src/fiber.h"

namespace kiln::emulator {

thread_local Builtins builtins;

namespace {

enum class Status { not_started, runnable, at_barrier, at_warp_op, exited, failed };

struct WarpRequest {
  WarpOp op;
  const char* name;
  SourceSite site;
  unsigned mask;
  uint64_t bits;
  int operand;
  int width;
  uint64_t result;
};

struct EmulatedThread {
  uint3 index{};
  int linear = 0;
  Status status = Status::not_started;
  FiberContext context;
  FiberStack stack;
  bool has_stack = false;
  SourceSite barrier_site{};
  WarpRequest warp{};
};

struct BlockRun {
  const GridLaunch* launch = nullptr;
  std::vector<EmulatedThread> threads;
  FiberContext scheduler;
  EmulatedThread* running = nullptr;
  std::string error;  // the first error found; the block stops there
};

thread_local BlockRun* current_block = nullptr;
thread_local StackPool stack_pool;

// "kernels/reduce.cu" rather than the whole build path.
std::string short_path(const char* file) {
  const std::string path = file ? file : "?";
  const size_t last = path.rfind('/');
  if (last == std::string::npos || last == 0) return path;
  const size_t before = path.rfind('/', last - 1);
  return before == std::string::npos ? path : path.substr(before + 1);
}

std::string where(SourceSite site) { return short_path(site.file) + ":" + std::to_string(site.line); }

std::string coordinates(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string hex(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

bool same_site(SourceSite a, SourceSite b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

BlockRun& block_of_running_thread(const char* what) {
  if (!current_block || !current_block->running) {
    std::fprintf(stderr, "kiln emulator: %s called outside a kernel\n", what);
    std::abort();  // a device function called from host code: a bug in the caller, no status to return
  }
  return *current_block;
}

// Stops the running thread for good with an error; the scheduler abandons the block.
// The fiber's frames are never unwound, so `message` (the caller's local) hands its
// heap buffer back here, or LeakSanitizer would rightly report it.
[[noreturn]] void fail_running_thread(BlockRun& block, std::string& message) {
  EmulatedThread& thread = *block.running;
  if (block.error.empty()) block.error = "thread " + coordinates(thread.index) + ": " + message;
  std::string().swap(message);
  thread.status = Status::failed;
  fiber_switch(thread.context, block.scheduler, /*from_finished=*/true);
  std::abort();  // never resumed
}

void wait_here(BlockRun& block, Status status) {
  EmulatedThread& thread = *block.running;
  thread.status = status;
  fiber_switch(thread.context, block.scheduler);
}

void thread_main(void* argument) {
  EmulatedThread& thread = *static_cast<EmulatedThread*>(argument);
  BlockRun& block = *current_block;
  fiber_started(block.scheduler);
  block.launch->thread_body(block.launch->state.get());
  thread.status = Status::exited;
  fiber_switch(thread.context, block.scheduler, /*from_finished=*/true);
  std::abort();  // never resumed
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The shuffle source lane for `lane` (0..31), or -1 for "keeps its own value".
int shuffle_source(const WarpRequest& r, int lane) {
  const int width = r.width;
  const int segment = lane / width * width;
  switch (r.op) {
    case WarpOp::shfl_idx: return segment + ((r.operand % width) + width) % width;
    case WarpOp::shfl_up: return lane - r.operand < segment ? -1 : lane - r.operand;
    case WarpOp::shfl_down: return lane + r.operand >= segment + width ? -1 : lane + r.operand;
    case WarpOp::shfl_xor: {
      const int source = lane ^ r.operand;
      return source >= segment + width || source < 0 ? -1 : source;
    }
    default: return -1;
  }
}

// Releases every warp operation whose lanes have all arrived. Returns whether any
// was released; sets block.error on an inconsistency.
bool release_warp_operations(BlockRun& block) {
  const int count = static_cast<int>(block.threads.size());
  bool released = false;
  for (int base = 0; base < count; base += 32) {
    for (int lane = 0; lane < 32 && base + lane < count; ++lane) {
      EmulatedThread& first = block.threads[base + lane];
      if (first.status != Status::at_warp_op) continue;
      const WarpRequest& request = first.warp;
      const std::string call = std::string(request.name) + " at " + where(request.site);
      bool complete = true;
      for (int other = 0; other < 32; ++other) {
        if (!(request.mask >> other & 1u)) continue;
        if (base + other >= count) {
          block.error = "thread " + coordinates(first.index) + ": " + call + ": mask " + hex(request.mask) +
                        " names lane " + std::to_string(other) + ", which does not exist (the block has " +
                        std::to_string(count) + " threads)";
          return false;
        }
        const EmulatedThread& peer = block.threads[base + other];
        if (peer.status == Status::exited) {
          block.error = "thread " + coordinates(first.index) + ": " + call + ": mask " + hex(request.mask) +
                        " names lane " + std::to_string(other) + " (thread " + coordinates(peer.index) +
                        "), which has exited";
          return false;
        }
        if (peer.status != Status::at_warp_op) {
          complete = false;  // it waits at a barrier: reported by release_barrier as a deadlock
          continue;
        }
        if (peer.warp.op != request.op || peer.warp.mask != request.mask || !same_site(peer.warp.site, request.site)) {
          block.error = "thread " + coordinates(first.index) + ": " + call + " with mask " + hex(request.mask) +
                        ", but lane " + std::to_string(other) + " (thread " + coordinates(peer.index) + ") is at " +
                        peer.warp.name + " at " + where(peer.warp.site) + " with mask " + hex(peer.warp.mask);
          return false;
        }
      }
      if (!complete) continue;
      // Every lane of the mask is here: compute what each receives.
      uint64_t votes = 0;
      int all = 1, any = 0;
      for (int other = 0; other < 32; ++other)
        if (request.mask >> other & 1u) {
          const bool vote = block.threads[base + other].warp.bits != 0;
          votes |= static_cast<uint64_t>(vote) << other;
          all &= vote;
          any |= vote;
        }
      for (int other = 0; other < 32; ++other) {
        if (!(request.mask >> other & 1u)) continue;
        EmulatedThread& member = block.threads[base + other];
        WarpRequest& mine = member.warp;
        switch (mine.op) {
          case WarpOp::ballot: mine.result = votes; break;
          case WarpOp::all: mine.result = static_cast<uint64_t>(all); break;
          case WarpOp::any: mine.result = static_cast<uint64_t>(any); break;
          case WarpOp::syncwarp: mine.result = 0; break;
          default: {
            const int source = shuffle_source(mine, other);
            if (source < 0) {
              mine.result = mine.bits;
            } else if (!(request.mask >> source & 1u)) {
              block.error = "thread " + coordinates(member.index) + ": " + call + " reads lane " +
                            std::to_string(source) + ", which is not in the mask " + hex(request.mask) +
                            " (its value is undefined)";
              return false;
            } else {
              mine.result = block.threads[base + source].warp.bits;
            }
          }
        }
      }
      for (int other = 0; other < 32; ++other)
        if (request.mask >> other & 1u) block.threads[base + other].status = Status::runnable;
      released = true;
    }
  }
  return released;
}

// Releases the barrier when every live thread waits at the same one; otherwise
// describes why the block cannot go on.
bool release_barrier(BlockRun& block) {
  const EmulatedThread* at_barrier = nullptr;
  const EmulatedThread* exited = nullptr;
  int exited_count = 0;
  for (const EmulatedThread& thread : block.threads) {
    if (thread.status == Status::exited) {
      if (!exited) exited = &thread;
      ++exited_count;
    } else if (thread.status == Status::at_barrier) {
      if (!at_barrier) at_barrier = &thread;
    }
  }
  for (const EmulatedThread& thread : block.threads) {
    if (thread.status == Status::at_warp_op) {
      block.error = "thread " + coordinates(thread.index) + ": " + thread.warp.name + " at " +
                    where(thread.warp.site) + " waits for lanes of mask " + hex(thread.warp.mask) +
                    " that never arrive" +
                    (at_barrier ? " (thread " + coordinates(at_barrier->index) + " waits at __syncthreads at " +
                                      where(at_barrier->barrier_site) + ")"
                                : std::string());
      return false;
    }
    if (thread.status == Status::at_barrier && !same_site(thread.barrier_site, at_barrier->barrier_site)) {
      block.error = "threads wait at different barriers: thread " + coordinates(at_barrier->index) +
                    " at __syncthreads at " + where(at_barrier->barrier_site) + ", thread " +
                    coordinates(thread.index) + " at __syncthreads at " + where(thread.barrier_site);
      return false;
    }
  }
  if (!at_barrier) return false;
  if (exited) {
    block.error = "__syncthreads at " + where(at_barrier->barrier_site) + " is reached by thread " +
                  coordinates(at_barrier->index) + ", but " + std::to_string(exited_count) +
                  " thread(s) of the block, first " + coordinates(exited->index) +
                  ", exited without reaching it (a barrier must be reached by every thread of the block)";
    return false;
  }
  for (EmulatedThread& thread : block.threads) thread.status = Status::runnable;
  return true;
}

void run_thread(BlockRun& block, EmulatedThread& thread) {
  if (thread.status == Status::not_started) {
    thread.stack = stack_pool.acquire();
    thread.has_stack = true;
    fiber_prepare(thread.context, thread.stack, &thread_main, &thread);
  }
  builtins.thread_index = thread.index;
  block.running = &thread;
  fiber_switch(block.scheduler, thread.context);
  block.running = nullptr;
  if (thread.status == Status::exited) {
    stack_pool.release(thread.stack);
    thread.has_stack = false;
  }
}

bool run_block(BlockRun& block, uint64_t block_linear, const SchedulerOptions& options) {
  const int count = static_cast<int>(block.threads.size());
  for (EmulatedThread& thread : block.threads) thread.status = Status::not_started;
  std::vector<int> order;
  if (options.order == ThreadOrder::random) order.resize(count);
  for (uint64_t pass = 0;; ++pass) {
    if (options.order == ThreadOrder::random) {  // a new permutation every pass (Fisher-Yates)
      uint64_t state = options.seed ^ (block_linear * 0x9E3779B97F4A7C15ull) ^ (pass << 32);
      for (int i = 0; i < count; ++i) order[i] = i;
      for (int i = count - 1; i > 0; --i) std::swap(order[i], order[splitmix64(state) % (i + 1)]);
    }
    int finished = 0;
    for (int k = 0; k < count; ++k) {
      const int t = options.order == ThreadOrder::forward ? k
                    : options.order == ThreadOrder::reverse ? count - 1 - k
                                                            : order[k];
      EmulatedThread& thread = block.threads[t];
      if (thread.status == Status::not_started || thread.status == Status::runnable) run_thread(block, thread);
      if (!block.error.empty()) return false;
      finished += thread.status == Status::exited;
    }
    if (finished == count) return true;
    if (release_warp_operations(block)) continue;
    if (!block.error.empty()) return false;
    if (release_barrier(block)) continue;
    if (block.error.empty()) block.error = "the block cannot make progress";
    return false;
  }
}

}  // namespace

// ---- the device-side calls (kiln_emulator/device.h)
void sync_threads(SourceSite site) {
  BlockRun& block = block_of_running_thread("__syncthreads");
  block.running->barrier_site = site;
  wait_here(block, Status::at_barrier);
}

uint64_t warp_exchange(WarpOp op, const char* name, SourceSite site, unsigned mask, uint64_t bits, int operand,
                       int width) {
  BlockRun& block = block_of_running_thread(name);
  EmulatedThread& thread = *block.running;
  const int lane = thread.linear % 32;
  // (No std::string lives across wait_here: a fiber abandoned while waiting is never
  // unwound, and its heap memory would leak.)
  if (!(mask >> lane & 1u)) {
    std::string message = std::string(name) + " at " + where(site) + ": the mask " + hex(mask) +
                          " does not include the calling lane " + std::to_string(lane);
    fail_running_thread(block, message);
  }
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    std::string message = std::string(name) + " at " + where(site) + ": width " + std::to_string(width) +
                          " is not a power of two from 1 to 32";
    fail_running_thread(block, message);
  }
  thread.warp = WarpRequest{op, name, site, mask, bits, operand, width, 0};
  wait_here(block, Status::at_warp_op);
  return thread.warp.result;
}

// ---- grids
SchedulerOptions scheduler_options_from_environment() {
  SchedulerOptions options;
  const char* value = std::getenv("KILN_EMULATE_ORDER");
  if (!value || !*value || std::strcmp(value, "forward") == 0) return options;
  if (std::strcmp(value, "reverse") == 0) {
    options.order = ThreadOrder::reverse;
  } else if (std::strncmp(value, "random", 6) == 0 && (value[6] == '\0' || value[6] == ':')) {
    options.order = ThreadOrder::random;
    options.seed = value[6] == ':' ? std::strtoull(value + 7, nullptr, 10) : 1;
  } else {
    std::fprintf(stderr, "kiln emulator: KILN_EMULATE_ORDER='%s' is not forward, reverse, random or random:SEED; "
                 "using forward\n", value);
  }
  return options;
}

cudaError_t run_grid(const GridLaunch& launch, const SchedulerOptions& options, std::string& error) {
  const dim3 grid = launch.grid, block_dim = launch.block;
  BlockRun block;
  block.launch = &launch;
  block.threads.resize(static_cast<size_t>(block_dim.x) * block_dim.y * block_dim.z);
  for (unsigned z = 0, linear = 0; z < block_dim.z; ++z)
    for (unsigned y = 0; y < block_dim.y; ++y)
      for (unsigned x = 0; x < block_dim.x; ++x, ++linear) {
        block.threads[linear].index = uint3{x, y, z};
        block.threads[linear].linear = static_cast<int>(linear);
      }
  BlockRun* const outer = current_block;
  current_block = &block;
  builtins.block_dim = block_dim;
  builtins.grid_dim = grid;
  cudaError_t status = cudaSuccess;
  uint64_t block_linear = 0;
  for (unsigned z = 0; z < grid.z && status == cudaSuccess; ++z)
    for (unsigned y = 0; y < grid.y && status == cudaSuccess; ++y)
      for (unsigned x = 0; x < grid.x; ++x, ++block_linear) {
        builtins.block_index = uint3{x, y, z};
        if (run_block(block, block_linear, options)) continue;
        error = std::string("kernel ") + launch.site.kernel + " (launched at " +
                where(SourceSite{launch.site.file, launch.site.line}) + "), block " + coordinates(uint3{x, y, z}) +
                ", " + block.error;
        status = cudaErrorLaunchFailure;
        for (EmulatedThread& thread : block.threads)  // abandon the fibers still waiting
          if (thread.has_stack) {
            stack_pool.release_abandoned(thread.stack);
            thread.has_stack = false;
          }
        break;
      }
  current_block = outer;
  return status;
}

}  // namespace kiln::emulator
