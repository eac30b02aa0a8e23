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
// - Private pools, for CUDA graphs (engine/train/cuda_graph_step.h; PyTorch's graph
//   pools): a captured graph replays the addresses it was captured with, so the
//   blocks its step used must never serve anyone else between replays. While a
//   pool is active (begin_private_pool), requests are served from that pool's own
//   blocks, new blocks join it, and a block of the pool goes back to the pool when
//   freed, whenever that is; nothing outside the pool is ever served from it. With
//   capturing set (the stream is being recorded into a graph), a request the pool
//   cannot serve from its cache throws instead of calling the system: a
//   cudaMalloc during capture would not be part of the graph, and a warm-up step
//   run in the same pool has already reserved every size the step needs. (A pool
//   serves a request only from blocks of exactly its rounded size, so that this
//   holds whatever order the blocks were freed in.)
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/memory/allocator.h"

namespace kiln {

// What the caching layer calls when its cache cannot serve a request.
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  virtual void* raw_allocate(size_t bytes) = 0;  // nullptr when out of memory
  virtual void raw_free(void* ptr) = 0;
  virtual Device device() const = 0;
  // Runs `action` once the work queued so far on the device's stream has run, and
  // before any work queued later: a host function on the stream for a GPU, at once
  // where nothing is queued (host memory). Under AddressSanitizer the cache poisons
  // and unpoisons its blocks through it (caching_allocator.cpp says why); `action`
  // touches only ASan's shadow, and must not call the CUDA API.
  virtual void in_stream_order(std::function<void()> action) { action(); }
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

  void release_cache() override;    // give every cached block back to the system (private pools' stay)
  int64_t cached_bytes() const;     // reserved but not in use

  // Private pools (see above). pool > 0; one pool is active at a time, and only the
  // thread that activated it may allocate on this device until end_private_pool().
  void begin_private_pool(int pool, bool capturing);
  void end_private_pool();
  int active_private_pool() const;
  // The pool's graph is gone: its blocks join the ordinary cache.
  void release_private_pool(int pool);
  int64_t private_pool_bytes(int pool) const;  // reserved by the pool (in use + cached)

 private:
  struct Block { size_t size; uintptr_t stream; int pool; };
  using FreeList = std::multimap<size_t, void*>;  // size -> block, for best fit
  struct FreeLists { FreeList small, large; };

  FreeList& free_list_for(size_t size, int pool) {
    FreeLists& lists = free_[pool];
    return size < kSmallLimit ? lists.small : lists.large;
  }
  void release_cache_locked();
  int64_t private_pool_bytes_locked(int pool) const;
  // Under ASan: only [ptr, ptr + exposed) of the block [ptr, ptr + size) may be
  // touched from the point of the stream where the call is queued (during a capture:
  // once the capture ends). Nothing in other builds.
  void expose_in_stream_order(void* ptr, size_t exposed, size_t size);

  RawAllocator& raw_;
  mutable std::mutex mutex_;
  std::map<int, FreeLists> free_;  // pool -> its cached blocks; pool 0 is the ordinary cache
  int active_pool_ = 0;
  bool capturing_ = false;
  std::vector<std::function<void()>> exposures_after_capture_;  // see expose_in_stream_order
  std::unordered_map<void*, Block> blocks_;  // every block held from the system
  std::unordered_map<void*, bool> in_use_;
  MemoryStats stats_;
};

}  // namespace kiln
