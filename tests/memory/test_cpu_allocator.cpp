// The host allocator caches like the device one (engine/memory/cpu_allocator.cpp):
// a training loop asks for the same sizes every step, so once the first steps have
// filled the cache (the optimizer's state appears at the first step, and best fit
// can hand a freed block to a smaller request of the next step, so the cache settles
// over two or three steps), further steps make no aligned_alloc call at all. Without the cache every large activation was a
// fresh mmap whose pages the kernel had to fault in and zero, step after step.
#include <doctest/doctest.h>

#include "engine/memory/allocator.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "models/registry.h"

using namespace kiln;

TEST_CASE("cpu allocator: a steady training loop makes no system allocation after the first steps") {
  auto model = models::make_model("mobilenet_v2", 10);
  model->train();
  auto optimizer = optim::make_optimizer("sgd", model->trainable_parameters(), optim::OptimizerOptions{0.01, 0, 0.9});
  Rng rng(3);
  const Tensor images = randn({4, 3, 32, 32}, rng);
  const Tensor labels = from_vector({0, 1, 2, 3}, {4}, {DType::i64});
  Allocator& allocator = cpu_allocator();
  std::vector<int64_t> system_allocations;
  for (int step = 0; step < 5; ++step) {
    optimizer->zero_grad();
    const Tensor loss = cross_entropy(model->forward(images), labels);
    loss.backward();
    optimizer->step();
    system_allocations.push_back(allocator.stats().system_allocations);
  }
  INFO("aligned_alloc calls after each step: " << system_allocations[0] << " " << system_allocations[1] << " "
                                                << system_allocations[2] << " " << system_allocations[3] << " "
                                                << system_allocations[4]);
  CHECK(system_allocations[0] > 0);
  CHECK(system_allocations[4] == system_allocations[2]);  // steps 4 and 5: all from the cache
  const MemoryStats stats = allocator.stats();
  CHECK(stats.bytes_reserved >= stats.bytes_in_use);
  CHECK(stats.system_frees == 0);  // nothing went back to the system while memory was plentiful
}

TEST_CASE("cpu allocator: release_cache gives the cached blocks back and keeps the ones in use") {
  Allocator& allocator = cpu_allocator();
  Tensor kept = zeros({1024, 1024});  // 4 MiB in use across the release
  { Tensor freed = zeros({2048, 1024}); }  // 8 MiB now cached
  const MemoryStats before = allocator.stats();
  CHECK(before.bytes_reserved - before.bytes_in_use >= 8 << 20);
  allocator.release_cache();
  const MemoryStats after = allocator.stats();
  CHECK(after.bytes_reserved == after.bytes_in_use);
  CHECK(after.system_frees > before.system_frees);
  CHECK(after.bytes_in_use == before.bytes_in_use);
  kept.data<float>()[0] = 1.0f;  // still valid memory
  CHECK(kept.data<float>()[0] == 1.0f);
}
