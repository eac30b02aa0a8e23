// Host memory for CPU tensors: 64-byte aligned blocks, cached and reused.
//
// Why a cache on the host too: a training step frees and asks again for the same
// activation and gradient sizes every step. glibc serves large requests with fresh
// mmap'ed pages and returns them on free, so each step would fault in (and zero)
// every large buffer again: with MobileNetV2 on 2 cores that page clearing took a
// quarter of the step (docs/benchmarks.md). The same CachingAllocator the GPU uses
// (engine/memory/caching_allocator.h) keeps freed blocks and hands them out again,
// over aligned_alloc instead of cudaMalloc; its counters then say, as on the GPU,
// that a steady loop makes no system calls after the first step.
#include <cstdlib>

#include "engine/memory/allocator.h"
#include "engine/memory/caching_allocator.h"

namespace kiln {

namespace {

// aligned_alloc/free under the cache. 64 bytes: a cache line, and what AVX-512 loads want.
class AlignedHostMemory final : public RawAllocator {
 public:
  void* raw_allocate(size_t bytes) override {
    const size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
    return std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  }
  void raw_free(void* ptr) override { std::free(ptr); }
  Device device() const override { return Device::cpu(); }
};

}  // namespace

Allocator& cpu_allocator() {
  // Never destroyed: a tensor held by some other static may be freed after a local
  // static allocator would be gone. The system takes the memory back at exit.
  static AlignedHostMemory* memory = new AlignedHostMemory;
  static CachingAllocator* allocator = new CachingAllocator(*memory);
  return *allocator;
}

}  // namespace kiln
