// Pinned (page-locked) host memory for transfers.
//
// Why: a copy from ordinary (pageable) host memory is staged by the driver through
// a pinned bounce buffer and cannot overlap with kernels; from pinned memory the
// copy engine reads the bytes directly, so a data loader can fill the next batch
// while the GPU computes. cudaHostAlloc is slow (it locks pages), so pinned
// buffers are cached exactly like device memory: the same CachingAllocator over a
// RawAllocator that calls cudaHostAlloc / cudaFreeHost.
#include "engine/cuda/cuda_check.h"
#include "engine/memory/caching_allocator.h"

namespace kiln {

namespace {

class PinnedHostMemory final : public RawAllocator {
 public:
  void* raw_allocate(size_t bytes) override {
    void* ptr = nullptr;
    // Portable: usable from every GPU's context, not only the current device's.
    const cudaError_t status = cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;  // the caching allocator frees its cache and retries
    }
    CUDA_CHECK(status);
    return ptr;
  }
  void raw_free(void* ptr) override { CUDA_CHECK_NOTHROW(cudaFreeHost(ptr)); }
  Device device() const override { return Device::cpu(); }
};

}  // namespace

Allocator& pinned_host_allocator() {
  // Never destroyed: pinned blocks may still be held by tensors freed after main()
  // returns, when the CUDA runtime is already shutting down (as for the contexts).
  static PinnedHostMemory* raw = new PinnedHostMemory();
  static CachingAllocator* cache = new CachingAllocator(*raw);
  return *cache;
}

}  // namespace kiln
