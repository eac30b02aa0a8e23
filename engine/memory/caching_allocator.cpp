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
    expose(ptr, bytes, blocks_[ptr].size);
    stats_.bytes_in_use += static_cast<int64_t>(blocks_[ptr].size);
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return ptr;
  }
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
  expose(ptr, bytes, rounded);
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
  KILN_POISON(ptr, block->second.size);  // cached: any access until it is handed out again is a bug
  stats_.bytes_in_use -= static_cast<int64_t>(block->second.size);
  pool_for(block->second.size).emplace(block->second.size, ptr);
}

void CachingAllocator::release_cache_locked() {
  for (FreeList* pool : {&small_free_, &large_free_}) {
    for (auto& entry : *pool) {
      KILN_UNPOISON(entry.second, blocks_[entry.second].size);
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
