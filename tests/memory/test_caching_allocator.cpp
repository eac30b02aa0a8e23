// The caching logic, tested over a counting host "device", so that it runs on any
// machine; the CUDA context uses the same class over cudaMalloc.
#include <doctest/doctest.h>

#include <cstdlib>
#include <functional>
#include <set>
#include <vector>

#include "engine/memory/caching_allocator.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define KILN_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_TEST_ASAN 1
#endif
#endif
#ifdef KILN_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

using namespace kiln;

namespace {
class CountingRaw final : public RawAllocator {
 public:
  void* raw_allocate(size_t bytes) override {
    if (limit && held + bytes > limit) return nullptr;  // simulated out-of-memory
    ++calls;
    held += bytes;
    void* p = std::malloc(bytes);
    sizes[p] = bytes;
    return p;
  }
  void raw_free(void* p) override {
    held -= sizes[p];
    sizes.erase(p);
    std::free(p);
  }
  Device device() const override { return Device::cuda(7); }
  int calls = 0;
  size_t held = 0, limit = 0;
  std::map<void*, size_t> sizes;
};
}  // namespace

TEST_CASE("caching allocator: a steady loop makes no system calls after the first step") {
  CountingRaw raw;
  CachingAllocator cache(raw);
  const std::vector<size_t> step_sizes = {4 << 20, 1000, 3 << 20, 256, 4 << 20, 77777};
  std::set<void*> first_addresses;
  for (int step = 0; step < 5; ++step) {
    std::vector<std::pair<void*, size_t>> live;
    for (size_t bytes : step_sizes) live.push_back({cache.allocate(bytes), bytes});
    if (step == 0) {
      for (auto& [p, b] : live) first_addresses.insert(p);
    } else {
      for (auto& [p, b] : live) CHECK(first_addresses.count(p) == 1);  // stable addresses (graph capture)
    }
    for (auto& [p, b] : live) cache.deallocate(p, b);
  }
  CHECK(raw.calls == static_cast<int>(step_sizes.size()));
  CHECK(cache.stats().system_allocations == static_cast<int64_t>(step_sizes.size()));
  CHECK(cache.stats().bytes_in_use == 0);
  CHECK(cache.stats().peak_bytes_in_use >= static_cast<int64_t>((8 << 20) + (3 << 20)));
}

TEST_CASE("caching allocator: never hands a small request a block over twice its size") {
  CountingRaw raw;
  CachingAllocator cache(raw);
  void* big = cache.allocate(8 << 20);
  cache.deallocate(big, 8 << 20);
  void* small = cache.allocate(3 << 20);
  CHECK(small != big);
  CHECK(raw.calls == 2);
  cache.deallocate(small, 3 << 20);
}

TEST_CASE("caching allocator: blocks are reused only on their own stream") {
  CountingRaw raw;
  CachingAllocator cache(raw);
  void* a = cache.allocate_on_stream(4096, /*stream=*/1);
  cache.deallocate(a, 4096);
  void* b = cache.allocate_on_stream(4096, /*stream=*/2);
  CHECK(b != a);
  void* c = cache.allocate_on_stream(4096, /*stream=*/1);
  CHECK(c == a);
  cache.deallocate(b, 4096);
  cache.deallocate(c, 4096);
}

TEST_CASE("caching allocator: out of memory frees the cache, retries, then names the request") {
  CountingRaw raw;
  raw.limit = 10 << 20;
  CachingAllocator cache(raw);
  void* a = cache.allocate(6 << 20);
  cache.deallocate(a, 6 << 20);  // cached: 6 MiB held from the "device"
  void* b = cache.allocate(9 << 20);  // does not fit beside the cache: release and retry succeeds
  CHECK(b != nullptr);
  CHECK(cache.stats().system_frees == 1);
  test::expect_error_containing([&] { cache.allocate(5 << 20); }, {"out of memory", "cuda:7", "5242880 bytes"});
  cache.deallocate(b, 9 << 20);
}

TEST_CASE("caching allocator: out of memory is an OutOfMemoryError, so the layers above can say where") {
  CountingRaw raw;
  raw.limit = 1 << 20;
  CachingAllocator cache(raw);
  CHECK_THROWS_AS(cache.allocate(2 << 20), OutOfMemoryError);
  try {
    cache.allocate(2 << 20);
  } catch (const OutOfMemoryError& e) {
    CHECK(e.request().find("2.0 MiB (2097152 bytes)") != std::string::npos);
    CHECK(e.module_path().empty());
    // The path is built from the inside out: the innermost module, then each parent.
    int conv = 0, block = 0, net = 0;
    const OutOfMemoryError located = e.in_module(&conv, "(Conv2d, input (2, 8, 4, 4))")
                                         .in_parent(&block, "conv1")
                                         .in_parent(&net, "layer3");
    CHECK(located.module_path() == "layer3.conv1");
    CHECK(located.innermost_module() == &net);
    CHECK(located.message().find("in the forward of layer3.conv1 (Conv2d, input (2, 8, 4, 4))") !=
          std::string::npos);
    const OutOfMemoryError backward = e.in_backward("the backward of 'conv2d' (gradient (2, 8, 4, 4))");
    CHECK(backward.message().find("in the backward of 'conv2d'") != std::string::npos);
  }
}

TEST_CASE("caching allocator: a private pool keeps its blocks for itself and refuses new ones while capturing") {
  CountingRaw raw;
  CachingAllocator cache(raw);
  // Warm-up in pool 1: its blocks join the pool.
  cache.begin_private_pool(1, /*capturing=*/false);
  void* a = cache.allocate(4096);
  void* b = cache.allocate(2 << 20);
  cache.deallocate(a, 4096);
  cache.deallocate(b, 2 << 20);
  cache.end_private_pool();
  CHECK(cache.private_pool_bytes(1) == 4096 + (2 << 20));
  // Outside the pool the same sizes are new blocks: the pool's are reserved for its graph.
  void* outside_a = cache.allocate(4096);
  void* outside_b = cache.allocate(2 << 20);
  CHECK(outside_a != a);
  CHECK(outside_b != b);
  CHECK(raw.calls == 4);
  // The captured step gets the warm-up's blocks back, with no system call.
  cache.begin_private_pool(1, /*capturing=*/true);
  CHECK(cache.allocate(2 << 20) == b);
  CHECK(cache.allocate(4096) == a);
  CHECK(raw.calls == 4);
  // A size the warm-up never asked for is named, not taken from the system.
  CHECK_THROWS_WITH(cache.allocate(8 << 20), doctest::Contains("not in a steady state"));
  // Only exact sizes: a smaller request must not take a block a later request of the
  // warm-up's size needs (which block is free first depends on the order of frees).
  cache.deallocate(a, 4096);
  CHECK_THROWS_WITH(cache.allocate(2048), doctest::Contains("not in a steady state"));
  CHECK(cache.allocate(4096) == a);
  CHECK(raw.calls == 4);
  cache.end_private_pool();
  // A pool block freed outside the capture (a gradient dropped later) goes back to the pool.
  cache.deallocate(a, 4096);
  cache.deallocate(outside_a, 4096);
  cache.begin_private_pool(1, /*capturing=*/true);
  CHECK(cache.allocate(4096) == a);
  cache.end_private_pool();
  // release_cache leaves the pool alone; releasing the pool hands its blocks to everyone.
  cache.release_cache();
  CHECK(cache.private_pool_bytes(1) == 4096 + (2 << 20));
  cache.deallocate(a, 4096);
  cache.deallocate(b, 2 << 20);
  cache.release_private_pool(1);
  CHECK(cache.private_pool_bytes(1) == 0);
  CHECK(cache.allocate(4096) == a);
  cache.deallocate(a, 4096);
  cache.deallocate(outside_b, 2 << 20);
}

namespace {
// A device whose stream runs behind the host: in_stream_order queues, run_stream runs.
class StreamRaw final : public RawAllocator {
 public:
  void* raw_allocate(size_t bytes) override { return std::malloc(bytes); }
  void raw_free(void* p) override {
    run_stream();  // as cudaFree: the device's queued work first
    std::free(p);
  }
  Device device() const override { return Device::cuda(7); }
  void in_stream_order(std::function<void()> action) override { queued.push_back(std::move(action)); }
  void run_stream() {
    for (auto& action : queued) action();
    queued.clear();
  }
  std::vector<std::function<void()>> queued;
};

#ifdef KILN_TEST_ASAN
bool poisoned(void* p, size_t offset = 0) { return __asan_address_is_poisoned(static_cast<char*>(p) + offset) != 0; }
#endif
}  // namespace

TEST_CASE("caching allocator: under ASan a block is poisoned and unpoisoned in its stream's order") {
  StreamRaw raw;
  CachingAllocator cache(raw);
  void* a = cache.allocate(1000);  // a new block: exposed at once, nothing queued can know it
  void* b = cache.allocate(3000);
#ifndef KILN_TEST_ASAN
  // Without ASan the cache queues nothing on the stream: the bookkeeping costs nothing.
  cache.deallocate(a, 1000);
  CHECK(cache.allocate(1000) == a);
  cache.deallocate(a, 1000);
  cache.deallocate(b, 3000);
  CHECK(raw.queued.empty());
  cache.release_cache();
  MESSAGE("the poisoning itself is checked in the ASan build (make test-asan)");
#else
  CHECK(raw.queued.empty());
  CHECK_FALSE(poisoned(a, 999));
  CHECK(poisoned(a, 1000));  // the rounding slack
  // Freed on the host while a kernel queued before the free may still read it: the
  // poisoning waits for the stream (the report of docs/cuda.md came from poisoning here).
  cache.deallocate(a, 1000);
  CHECK_FALSE(poisoned(a));
  raw.run_stream();
  CHECK(poisoned(a));
  // Handed out again: usable from the stream's point of the allocation on, and the
  // earlier poisoning, queued first, cannot land after it.
  cache.deallocate(b, 3000);
  CHECK(cache.allocate(3000) == b);
  raw.run_stream();
  CHECK_FALSE(poisoned(b, 2999));
  CHECK(poisoned(b, 3000));
  // During a capture a queued change would become part of the graph: it waits for
  // the capture's end and is queued before the graph's first launch.
  cache.begin_private_pool(1, /*capturing=*/false);
  void* pooled = cache.allocate(4096);
  cache.deallocate(pooled, 4096);  // a pool's block stays the graph's: never poisoned
  cache.end_private_pool();
  raw.run_stream();
  CHECK_FALSE(poisoned(pooled, 4095));
  cache.begin_private_pool(1, /*capturing=*/true);
  CHECK(cache.allocate(4096) == pooled);
  cache.deallocate(b, 3000);  // an ordinary block freed during the capture
  CHECK(raw.queued.empty());
  cache.end_private_pool();
  CHECK(raw.queued.size() == 2);  // the pool block's exposure, then b's poisoning
  CHECK_FALSE(poisoned(b));
  raw.run_stream();
  CHECK(poisoned(b));
  CHECK_FALSE(poisoned(pooled, 4095));
  // Releasing the pool poisons its cached blocks after the replays queued so far.
  cache.deallocate(pooled, 4096);
  cache.release_private_pool(1);
  CHECK_FALSE(poisoned(pooled));
  raw.run_stream();
  CHECK(poisoned(pooled));
  cache.release_cache();  // unpoisoned in order, then freed
  CHECK(raw.queued.empty());
#endif
}
