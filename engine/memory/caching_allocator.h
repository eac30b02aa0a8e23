// A caching allocator in the style of PyTorch's CUDACachingAllocator, written over
// a "raw" backend so that its logic is testable without a GPU.
//
// Design:
// - cudaMalloc and cudaFree are slow (they can synchronise the whole device), so
//   freed blocks are kept in a cache and handed out again. In a steady training
//   loop every size repeats each step, so after the first step there are no system
//   calls at all (tests/memory/test_caching_allocator.cpp counts them).
// - Sizes are rounded up to 512 bytes; requests under 1 MiB come from a "small"
//   pool, larger ones from a "large" pool, so that small tensors cannot pin down
//   large blocks.
// - Best fit: the smallest cached block of the same pool that is large enough and
//   at most 2x the rounded request (so a 4 KiB tensor never holds a 1 GiB block).
// - Blocks are tagged with the stream they were allocated on and reused only on
//   that stream: work queued on one stream runs in order, so a block freed there is
//   safe to reuse there without waiting. (kiln runs each device on one stream.)
// - Addresses stay stable: the same sequence of requests after a warm-up step gets
//   the same blocks, which is what CUDA graph capture needs.
// - On out-of-memory the cache is returned to the system and the call retried once;
//   a second failure throws kiln::Error with the request and the counters.
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/memory/allocator.h"

namespace kiln {

// What the caching layer calls when its cache cannot serve a request.
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  virtual void* raw_allocate(size_t bytes) = 0;  // nullptr when out of memory
  virtual void raw_free(void* ptr) = 0;
  virtual Device device() const = 0;
};

class CachingAllocator final : public Allocator {
 public:
  static constexpr size_t kRound = 512;
  static constexpr size_t kSmallLimit = 1 << 20;

  explicit CachingAllocator(RawAllocator& raw) : raw_(raw) {}
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(size_t bytes) override { return allocate_on_stream(bytes, 0); }
  void* allocate_on_stream(size_t bytes, uintptr_t stream);
  void deallocate(void* ptr, size_t bytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  Device device() const override { return raw_.device(); }

  void release_cache() override;    // give every cached block back to the system
  int64_t cached_bytes() const;     // reserved but not in use

 private:
  struct Block { size_t size; uintptr_t stream; };
  using FreeList = std::multimap<size_t, void*>;  // size -> block, for best fit

  FreeList& pool_for(size_t size) { return size < kSmallLimit ? small_free_ : large_free_; }
  void release_cache_locked();

  RawAllocator& raw_;
  mutable std::mutex mutex_;
  FreeList small_free_, large_free_;
  std::unordered_map<void*, Block> blocks_;  // every block held from the system
  std::unordered_map<void*, bool> in_use_;
  MemoryStats stats_;
};

}  // namespace kiln
