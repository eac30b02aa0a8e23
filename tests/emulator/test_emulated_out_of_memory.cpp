// Out of memory on the device, end to end: the emulated GPU's memory is capped
// (KILN_EMULATE_MEMORY, read at every cudaMalloc) just above what the test already
// holds, so one large activation cannot be allocated. The error must name the module
// path and its input shape (nn::Module::forward), or the op whose backward ran out
// (the tape), plus the request and the memory in use (the caching allocator), as
// docs/reliability.md promises. Only in the KILN_CUDA=EMULATE build: a real GPU's
// memory cannot be capped per test.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "engine/core/rng.h"
#include "engine/memory/allocator.h"
#include "engine/nn/layers.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"

using namespace kiln;

namespace {

// Caps the emulated device at what is allocated now plus `headroom` bytes, and lifts
// the cap when the test ends (also when a CHECK throws).
class DeviceMemoryCap {
 public:
  explicit DeviceMemoryCap(size_t headroom) {
    allocator_for(Device::cuda(0)).release_cache();  // cached blocks would hide the cap
    size_t free_bytes = 0, total_bytes = 0;
    REQUIRE(cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess);
    setenv("KILN_EMULATE_MEMORY", std::to_string(total_bytes - free_bytes + headroom).c_str(), 1);
  }
  ~DeviceMemoryCap() {
    unsetenv("KILN_EMULATE_MEMORY");
    allocator_for(Device::cuda(0)).release_cache();
  }
};

// stem: 3 -> 8 channels; layer1.conv1: 8 -> 1024 channels, a 32 MiB output at (2, ., 64, 64).
std::shared_ptr<nn::Sequential> two_stage_net() {
  auto layer1 = std::make_shared<nn::Sequential>();
  layer1->add("conv1", std::make_shared<nn::Conv2d>(8, 1024, 3, 1, 1));
  auto net = std::make_shared<nn::Sequential>();
  net->add("stem", std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1)).add("layer1", layer1);
  net->to(Device::cuda(0));
  return net;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const OutOfMemoryError& e) {
    return e.what();
  }
  return "(no OutOfMemoryError)";
}

}  // namespace

TEST_CASE("emulated GPU: out of memory in a forward names the module path, its input shape and the memory in use") {
  auto net = two_stage_net();
  Rng rng(7);
  const Tensor x = randn({2, 3, 64, 64}, rng).to(Device::cuda(0));
  std::string message;
  {
    DeviceMemoryCap cap(8 << 20);  // 8 MiB more: the stem fits, layer1.conv1's 32 MiB does not
    message = error_of([&] { net->forward(x); });
  }
  INFO(message);
  CHECK(message.find("out of memory on cuda:0: could not allocate 32.0 MiB (33554432 bytes)") != std::string::npos);
  CHECK(message.find("in use by tensors") != std::string::npos);
  CHECK(message.find("f32 (2, 1024, 64, 64) tensor") != std::string::npos);
  CHECK(message.find("in the forward of layer1.conv1 (Conv2d, input (2, 8, 64, 64))") != std::string::npos);
  // With the cap lifted the same forward runs: the failed one left nothing behind.
  CHECK(net->forward(x).shape() == Shape({2, 1024, 64, 64}));
}

TEST_CASE("emulated GPU: out of memory in a backward names the op whose backward ran out") {
  Rng rng(8);
  Tensor x = randn({2, 3, 64, 64}, rng).to(Device::cuda(0));
  x.set_requires_grad(true);
  auto conv = std::make_shared<nn::Conv2d>(3, 1024, 3, 1, 1);
  conv->to(Device::cuda(0));
  const Tensor loss = sum(conv->forward(x));  // the 32 MiB output is saved for nothing: sum keeps no input
  std::string message;
  {
    DeviceMemoryCap cap(8 << 20);  // the backward's first 32 MiB gradient does not fit
    message = error_of([&] { loss.backward(); });
  }
  INFO(message);
  CHECK(message.find("out of memory on cuda:0") != std::string::npos);
  CHECK(message.find("in the backward of '") != std::string::npos);
  CHECK(message.find("(gradient ") != std::string::npos);
}
