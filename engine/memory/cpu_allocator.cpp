#include <atomic>
#include <cstdlib>
#include <mutex>

#include "engine/core/check.h"
#include "engine/memory/allocator.h"

namespace kiln {

namespace {

// Plain aligned malloc/free with counters. Host memory is cheap to allocate
// compared with a device round trip, so there is no cache here.
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    const size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
    void* ptr = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    KILN_CHECK(ptr || rounded == 0, "out of memory: cpu allocation of ", bytes, " bytes failed (",
               stats().bytes_in_use, " bytes in use)");
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.system_allocations;
    stats_.bytes_in_use += static_cast<int64_t>(bytes);
    stats_.bytes_reserved += static_cast<int64_t>(bytes);
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return ptr;
  }
  void deallocate(void* ptr, size_t bytes) override {
    std::free(ptr);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.system_frees;
    stats_.bytes_in_use -= static_cast<int64_t>(bytes);
    stats_.bytes_reserved -= static_cast<int64_t>(bytes);
  }
  MemoryStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }
  Device device() const override { return Device::cpu(); }

 private:
  mutable std::mutex mutex_;
  MemoryStats stats_;
};

}  // namespace

Allocator& cpu_allocator() {
  static CpuAllocator allocator;
  return allocator;
}

}  // namespace kiln
