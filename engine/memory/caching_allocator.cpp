#include "engine/memory/caching_allocator.h"

#include <cstdio>
#include <string>

#include "engine/core/check.h"

// Under AddressSanitizer the cache tells ASan which bytes a tensor may touch: the
// slack between a request and its 512-byte-rounded block, and every cached block,
// are poisoned, so an overrun or a use after free is reported even though the
// memory stays allocated in the cache (otherwise the rounding hides small overruns).
// The blocks are host memory for the CPU and for the emulated GPU; for a real GPU
// the shadow of device addresses is never read, so poisoning it is harmless.
//
// A device block is freed, reused and read in the order of the device's stream, not
// the host's: a tensor may be freed on the host while kernels queued before the free
// still read it (legal: the block's next user is queued after them on the same
// stream). Poisoning at the free would make those kernels look like uses after free
// when the stream runs behind the host (the emulator's deferred streams, a real GPU),
// so a cached block's poisoning and unpoisoning are queued on the stream too
// (RawAllocator::in_stream_order: a host function), and land exactly between the
// last kernel of the old owner and the first of the new. During a CUDA graph capture
// a host function would become part of the graph, run by every replay, so the
// changes wait until the capture ends; they are then queued before the graph's first
// launch, and a captured kernel that reads a block freed during the capture (a real
// bug: eager work may reuse it between replays) is reported. docs/cuda.md has the
// ASan report this explained.
#if defined(__SANITIZE_ADDRESS__)
#define KILN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_ASAN 1
#endif
#endif
#ifdef KILN_ASAN
#include <sanitizer/asan_interface.h>
#define KILN_POISON(ptr, bytes) ASAN_POISON_MEMORY_REGION(ptr, bytes)
#define KILN_UNPOISON(ptr, bytes) ASAN_UNPOISON_MEMORY_REGION(ptr, bytes)
#else
#define KILN_POISON(ptr, bytes) ((void)(ptr), (void)(bytes))
#define KILN_UNPOISON(ptr, bytes) ((void)(ptr), (void)(bytes))
#endif

namespace kiln {

namespace {

// The block [ptr, ptr + block_size) now serves a request of `bytes`.
void expose(void* ptr, size_t bytes, size_t block_size) {
  KILN_UNPOISON(ptr, bytes);
  KILN_POISON(static_cast<char*>(ptr) + bytes, block_size - bytes);
}

// "1.5 MiB (1572864 bytes)": readable, and exact for whoever compares with nvidia-smi.
template <class Bytes>
std::string megabytes(Bytes bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB (%lld bytes)", static_cast<double>(bytes) / (1 << 20),
                static_cast<long long>(bytes));
  return text;
}

}  // namespace

CachingAllocator::~CachingAllocator() {
  // Destructors must not throw: free what is cached and leave in-use blocks alone
  // (their Storage outlived the allocator, which only happens at process exit).
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void CachingAllocator::expose_in_stream_order(void* ptr, size_t exposed, size_t size) {
#ifdef KILN_ASAN
  const auto change = [ptr, exposed, size] { expose(ptr, exposed, size); };
  if (capturing_)
    exposures_after_capture_.push_back(change);
  else
    raw_.in_stream_order(change);
#else
  (void)ptr, (void)exposed, (void)size;
#endif
}

void* CachingAllocator::allocate_on_stream(size_t bytes, uintptr_t stream) {
  const size_t rounded = bytes == 0 ? kRound : (bytes + kRound - 1) / kRound * kRound;
  std::lock_guard<std::mutex> lock(mutex_);
  FreeList& pool = free_list_for(rounded, active_pool_);
  // Best fit on the same stream, at most twice the request. A private pool takes
  // only blocks of exactly the rounded size: then which block a request gets cannot
  // depend on the order earlier blocks were freed in, so a step that repeats a
  // warm-up step's requests finds every size it needs (with slack, a small request
  // could take the only block a later, larger one needed, and a capture would fail).
  const size_t largest = active_pool_ == 0 ? 2 * rounded : rounded;
  for (auto it = pool.lower_bound(rounded); it != pool.end() && it->first <= largest; ++it) {
    void* ptr = it->second;
    if (blocks_[ptr].stream != stream) continue;
    pool.erase(it);
    in_use_[ptr] = true;
    // A private pool's block is exposed whole: during a capture it may serve several
    // tensors of the same rounded size one after another, and a graph replay touches
    // each of them, so the slack of the last one is no bug there.
    expose_in_stream_order(ptr, active_pool_ == 0 ? bytes : blocks_[ptr].size, blocks_[ptr].size);
    stats_.bytes_in_use += static_cast<int64_t>(blocks_[ptr].size);
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return ptr;
  }
  KILN_CHECK(!capturing_, "CUDA graph capture: the step asked for ", bytes, " bytes on ", raw_.device().to_string(),
             " that its private pool ", active_pool_, " (", private_pool_bytes_locked(active_pool_),
             " bytes reserved by the warm-up steps) cannot serve: the allocations are not in a steady state "
             "(the captured step allocates what its warm-up step did not), and a cudaMalloc during capture "
             "would not be part of the graph");
  void* ptr = raw_.raw_allocate(rounded);
  if (!ptr) {  // out of memory: return the cache to the system and try once more
    release_cache_locked();
    ptr = raw_.raw_allocate(rounded);
  }
  if (!ptr)
    throw OutOfMemoryError(str("out of memory on ", raw_.device().to_string(), ": could not allocate ",
                               megabytes(bytes), " (", megabytes(stats_.bytes_in_use), " in use by tensors, ",
                               megabytes(stats_.bytes_reserved), " reserved by kiln's cache, peak ",
                               megabytes(stats_.peak_bytes_in_use), ")"),
                           __FILE__, __LINE__);
  ++stats_.system_allocations;
  expose(ptr, active_pool_ == 0 ? bytes : rounded, rounded);  // at once: no queued work knows a new block
  blocks_[ptr] = Block{rounded, stream, active_pool_};
  in_use_[ptr] = true;
  stats_.bytes_reserved += static_cast<int64_t>(rounded);
  stats_.bytes_in_use += static_cast<int64_t>(rounded);
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr, size_t /*bytes*/) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto block = blocks_.find(ptr);
  if (block == blocks_.end() || !in_use_[ptr]) {
    std::fprintf(stderr, "kiln: caching allocator asked to free %p, which it does not hold\n", ptr);
    return;
  }
  in_use_[ptr] = false;
  // Cached: any access after the work queued so far, until it is handed out again,
  // is a bug. Not so for a private pool's block: a captured CUDA graph keeps its
  // address and every replay writes it again, so it stays the graph's until
  // release_private_pool (found by the ASan pass).
  if (block->second.pool == 0) expose_in_stream_order(ptr, 0, block->second.size);
  stats_.bytes_in_use -= static_cast<int64_t>(block->second.size);
  free_list_for(block->second.size, block->second.pool).emplace(block->second.size, ptr);
}

void CachingAllocator::release_cache_locked() {
  FreeLists& ordinary = free_[0];  // private pools keep their blocks: a graph replays their addresses
  for (FreeList* pool : {&ordinary.small, &ordinary.large}) {
    for (auto& entry : *pool) {
      // Queued after its poisoning; cudaFree waits for the device, so both run first.
      expose_in_stream_order(entry.second, blocks_[entry.second].size, blocks_[entry.second].size);
      raw_.raw_free(entry.second);
      ++stats_.system_frees;
      stats_.bytes_reserved -= static_cast<int64_t>(blocks_[entry.second].size);
      blocks_.erase(entry.second);
      in_use_.erase(entry.second);
    }
    pool->clear();
  }
}

void CachingAllocator::release_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void CachingAllocator::begin_private_pool(int pool, bool capturing) {
  std::lock_guard<std::mutex> lock(mutex_);
  KILN_CHECK(pool > 0, "caching allocator: private pools are numbered from 1, got ", pool);
  KILN_CHECK(active_pool_ == 0, "caching allocator: private pool ", active_pool_, " is still active (", pool,
             " asked for)");
  active_pool_ = pool;
  capturing_ = capturing;
}

void CachingAllocator::end_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  active_pool_ = 0;
  capturing_ = false;
  // The capture has ended (CudaGraphStep ends the pool after it): what it put off
  // goes on the stream now, before the graph's first launch.
  for (auto& change : exposures_after_capture_) raw_.in_stream_order(std::move(change));
  exposures_after_capture_.clear();
}

int CachingAllocator::active_private_pool() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_pool_;
}

void CachingAllocator::release_private_pool(int pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  KILN_CHECK(pool > 0 && pool != active_pool_, "caching allocator: cannot release private pool ", pool,
             pool > 0 ? " while it is active" : " (pools are numbered from 1)");
  for (auto& [ptr, block] : blocks_)
    if (block.pool == pool) block.pool = 0;  // blocks in use return to the ordinary cache when freed
  auto found = free_.find(pool);
  if (found == free_.end()) return;
  FreeLists& ordinary = free_[0];
  for (const FreeList* list : {&found->second.small, &found->second.large})
    for (const auto& [size, ptr] : *list) expose_in_stream_order(ptr, 0, size);  // after the queued replays
  ordinary.small.insert(found->second.small.begin(), found->second.small.end());
  ordinary.large.insert(found->second.large.begin(), found->second.large.end());
  free_.erase(found);
}

int64_t CachingAllocator::private_pool_bytes_locked(int pool) const {
  int64_t bytes = 0;
  for (const auto& [ptr, block] : blocks_)
    if (block.pool == pool) bytes += static_cast<int64_t>(block.size);
  return bytes;
}

int64_t CachingAllocator::private_pool_bytes(int pool) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return private_pool_bytes_locked(pool);
}

int64_t CachingAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_.bytes_reserved - stats_.bytes_in_use;
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

}  // namespace kiln
