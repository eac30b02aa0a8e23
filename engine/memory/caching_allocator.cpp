#include "engine/memory/caching_allocator.h"

#include <cstdio>

#include "engine/core/check.h"

namespace kiln {

CachingAllocator::~CachingAllocator() {
  // Destructors must not throw: free what is cached and leave in-use blocks alone
  // (their Storage outlived the allocator, which only happens at process exit).
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void* CachingAllocator::allocate_on_stream(size_t bytes, uintptr_t stream) {
  const size_t rounded = bytes == 0 ? kRound : (bytes + kRound - 1) / kRound * kRound;
  std::lock_guard<std::mutex> lock(mutex_);
  FreeList& pool = pool_for(rounded);
  // Best fit on the same stream, at most twice the request.
  for (auto it = pool.lower_bound(rounded); it != pool.end() && it->first <= 2 * rounded; ++it) {
    void* ptr = it->second;
    if (blocks_[ptr].stream != stream) continue;
    pool.erase(it);
    in_use_[ptr] = true;
    stats_.bytes_in_use += static_cast<int64_t>(blocks_[ptr].size);
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return ptr;
  }
  void* ptr = raw_.raw_allocate(rounded);
  if (!ptr) {  // out of memory: return the cache to the system and try once more
    release_cache_locked();
    ptr = raw_.raw_allocate(rounded);
  }
  KILN_CHECK(ptr, "out of memory on ", raw_.device().to_string(), ": could not allocate ", bytes,
             " bytes (", stats_.bytes_in_use, " bytes in use by tensors, ", stats_.bytes_reserved,
             " reserved; peak ", stats_.peak_bytes_in_use, ")");
  ++stats_.system_allocations;
  blocks_[ptr] = Block{rounded, stream};
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
  stats_.bytes_in_use -= static_cast<int64_t>(block->second.size);
  pool_for(block->second.size).emplace(block->second.size, ptr);
}

void CachingAllocator::release_cache_locked() {
  for (FreeList* pool : {&small_free_, &large_free_}) {
    for (auto& entry : *pool) {
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
