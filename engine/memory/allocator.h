// Allocators hand out raw device or host memory to Storage.
//
// There is one allocator per device: cpu_allocator() for host memory (64-byte
// aligned, so Eigen and AVX loads are aligned) and, in CUDA builds, a caching
// allocator per GPU (engine/memory/caching_allocator.h over cudaMalloc) owned by
// that device's cuda::Context. Every allocator keeps counters that tests and
// `kiln` read: how often it asked the system for memory, bytes in use, and peak.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/core/device.h"

namespace kiln {

struct MemoryStats {
  int64_t system_allocations = 0;  // calls to the system (malloc / cudaMalloc)
  int64_t system_frees = 0;        // calls to free / cudaFree
  int64_t bytes_in_use = 0;        // handed out to tensors now
  int64_t peak_bytes_in_use = 0;   // high-water mark of bytes_in_use since reset_peak()
  int64_t bytes_reserved = 0;      // held from the system (in use + cached)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory for `bytes` bytes; throws kiln::Error (naming the size and the
  // device) when the system has none left. `bytes` may be 0.
  virtual void* allocate(size_t bytes) = 0;
  // Gives back memory from allocate(); `bytes` is the size that was asked for.
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Gives memory that is cached but not in use back to the system (what
  // torch.cuda.empty_cache() does): between runs that need different sizes, e.g. the
  // rows of `kiln compare`. A no-op for an allocator that keeps no cache.
  virtual void release_cache() {}
  virtual Device device() const = 0;
};

// Host memory, 64-byte aligned. Thread-safe.
Allocator& cpu_allocator();

// The allocator of `device`: the CPU one, or the CUDA context's caching allocator.
Allocator& allocator_for(const Device& device);

// Page-locked host memory (cudaHostAlloc, cached), for buffers that are copied to a
// GPU: such copies can run asynchronously and overlap with kernels. In a build
// without CUDA there is nothing to transfer to, and this is cpu_allocator().
Allocator& pinned_host_allocator();

}  // namespace kiln
