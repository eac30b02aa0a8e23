// The CUDA runtime layer: the caching allocator on a real device, host<->device
// copies, the convert and fill kernels. GPU cases carry the "gpu" suite and skip
// with a message where there is no GPU; the last case runs everywhere and checks
// that a machine without a GPU says so clearly.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/core/backend_info.h"
#include "engine/memory/allocator.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

const DType kAllDTypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::u8, DType::i32, DType::i64};

// Small non-negative integers: exact in every dtype, so any conversion chain must
// give them back unchanged.
Tensor integer_ramp(const Shape& shape) {
  std::vector<double> values(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i % 200);
  return from_vector(values, shape, {DType::f64, Device::cpu(), Layout::nchw});
}

std::vector<uint16_t> raw_bits16(const Tensor& t) {
  std::vector<uint16_t> bits(static_cast<size_t>(t.numel()));
  std::memcpy(bits.data(), t.raw_data(), bits.size() * sizeof(uint16_t));
  return bits;
}

}  // namespace

TEST_CASE("cuda: a steady loop of allocations makes no cudaMalloc after the first step" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("caching allocator on the device")) return;
  const Device gpu = Device::cuda(0);
  // allocator_for(cuda:0) is cuda::Context::get(0).allocator(): the device's cache.
  Allocator& allocator = allocator_for(gpu);
  int64_t after_first_step = -1;
  for (int step = 0; step < 5; ++step) {
    Tensor x = full({8, 16, 14, 14}, 0.5, {DType::f32, gpu, Layout::nchw});
    Tensor bias = ones({16, 1, 1}, {DType::f32, gpu, Layout::nchw});
    Tensor y = add(x, bias);                  // broadcast kernel, one new tensor
    Tensor per_channel = sum(y, {0, 2, 3});   // block-per-output reduction
    Tensor total = sum(y);                    // two-pass reduction, uses the workspace
    const double got = total.to(Device::cpu()).item();
    CHECK(got == doctest::Approx(8 * 16 * 14 * 14 * 1.5));
    CHECK(per_channel.to(Device::cpu()).to_vector()[3] == doctest::Approx(8 * 14 * 14 * 1.5));
    if (step == 0) after_first_step = allocator.stats().system_allocations;
  }
  INFO("cudaMalloc calls after step 1: " << after_first_step << ", after step 5: "
                                         << allocator.stats().system_allocations);
  CHECK(after_first_step > 0);
  CHECK(allocator.stats().system_allocations == after_first_step);
}

TEST_CASE("cuda: host -> device -> host keeps every dtype and layout" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("host/device round trip")) return;
  const Tensor ramp = integer_ramp({2, 3, 4, 5});
  for (DType dtype : kAllDTypes) {
    for (Layout layout : {Layout::nchw, Layout::nhwc}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(layout == Layout::nhwc ? "nhwc" : "nchw");
      const Tensor host = ramp.to(dtype).to(layout);
      const Tensor device = host.to(Device::cuda(0));
      CHECK(device.dtype() == dtype);
      CHECK(device.layout() == layout);
      const Tensor back = device.to(Device::cpu());
      CHECK(back.to_vector() == ramp.to_vector());
      // The memory itself, not just the logical values, must come back unchanged.
      CHECK(std::memcmp(back.raw_data(), host.raw_data(), static_cast<size_t>(host.nbytes())) == 0);
    }
  }
}

TEST_CASE("cuda: f32 -> bf16 -> f32 on the device is bit-exact with the CPU rounding" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("bf16 conversion kernel")) return;
  // Random values plus the cases rounding gets wrong: ties, the largest values,
  // subnormals, signed zero and infinities.
  std::vector<double> values = {0.0, -0.0, 1.0, -1.0, 1.00390625, 1.01171875, 3.4e38, -3.4e38, 1e-40, -1e-45,
                                std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  Rng rng(11);
  while (values.size() < 4096) values.push_back(rng.normal() * std::pow(10.0, rng.uniform(-6, 6)));
  const Tensor host = from_vector(values, {static_cast<int64_t>(values.size())}, {DType::f32});
  const Tensor bf16_on_device = host.to(Device::cuda(0)).to(DType::bf16);
  const std::vector<uint16_t> device_bits = raw_bits16(bf16_on_device.to(Device::cpu()));
  const float* x = host.data<float>();
  int mismatches = 0;
  for (size_t i = 0; i < values.size(); ++i) mismatches += device_bits[i] != float_to_bf16_bits(x[i]);
  CHECK(mismatches == 0);

  const Tensor round_trip = bf16_on_device.to(DType::f32).to(Device::cpu());
  const float* y = round_trip.data<float>();
  for (size_t i = 0; i < values.size(); ++i) {
    const float want = bf16_bits_to_float(float_to_bf16_bits(x[i]));
    mismatches += std::memcmp(&y[i], &want, sizeof(float)) != 0;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("cuda: the convert kernel agrees with the CPU for every dtype pair and layout" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("convert kernel")) return;
  Rng rng(5);
  const Tensor random = uniform({2, 3, 4, 5}, -8, 8, rng, {DType::f32});
  const Tensor ramp = integer_ramp({2, 3, 4, 5});
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      for (Layout from_layout : {Layout::nchw, Layout::nhwc}) {
        for (Layout to_layout : {Layout::nchw, Layout::nhwc}) {
          CAPTURE(dtype_name(from));
          CAPTURE(dtype_name(to));
          CAPTURE(static_cast<int>(from_layout));
          CAPTURE(static_cast<int>(to_layout));
          // Random signed values between floating types; the ramp where integers are involved.
          const Tensor values = is_floating(from) && is_floating(to) ? random : ramp;
          const Tensor source = values.to(from).to(from_layout);
          const Tensor want = source.to(to).to(to_layout);  // the CPU conversion
          const Tensor got = source.to(Device::cuda(0)).to(to).to(to_layout).to(Device::cpu());
          CHECK(got.to_vector() == want.to_vector());
        }
      }
    }
  }
}

TEST_CASE("cuda: conversions of NaN, infinities and out-of-range values to u8, i32 and i64 equal the CPU's" *
          doctest::test_suite("gpu")) {
  // A bare cast of these is undefined, and x86 and the GPU's cvt instructions give
  // different values: both sides saturate (engine/core/dtype.h, saturate_i64.h).
  // On the emulated GPU the kernel runs on x86; the real GPU checks the rule.
  if (test::skip_without_gpu("convert kernel, out-of-range values")) return;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> values = {nan, inf, -inf, 1e20, -1e20, 3e9, -3e9, 300.5, -0.5, 9.2233720368547758e18};
  for (DType from : {DType::f64, DType::f32}) {
    for (DType to : {DType::u8, DType::i32, DType::i64}) {
      CAPTURE(dtype_name(from));
      CAPTURE(dtype_name(to));
      const Tensor source = from_vector(values, {static_cast<int64_t>(values.size())}, {from});
      const Tensor want = source.to(to);
      const Tensor got = source.to(Device::cuda(0)).to(to).to(Device::cpu());
      CHECK(std::memcmp(got.raw_data(), want.raw_data(), static_cast<size_t>(want.nbytes())) == 0);
      for (double value : values) {  // fill converts on the host, by the same rule
        CAPTURE(value);
        const Tensor fill_want = full({2}, value, {to});
        const Tensor fill_got = full({2}, value, {to, Device::cuda(0), Layout::nchw}).to(Device::cpu());
        CHECK(std::memcmp(fill_got.raw_data(), fill_want.raw_data(), static_cast<size_t>(fill_want.nbytes())) == 0);
      }
    }
  }
}

TEST_CASE("cuda: fill writes the same bits as the CPU fill for every dtype" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("fill kernel")) return;
  for (DType dtype : kAllDTypes) {
    for (double value : {0.0, 1.0, 2.5, 100.0}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(value);
      const Tensor want = full({3, 7}, value, {dtype, Device::cpu(), Layout::nchw});
      const Tensor got = full({3, 7}, value, {dtype, Device::cuda(0), Layout::nchw}).to(Device::cpu());
      CHECK(std::memcmp(got.raw_data(), want.raw_data(), static_cast<size_t>(want.nbytes())) == 0);
    }
  }
}

TEST_CASE("cuda: without a usable GPU, a CUDA tensor is an error that says CUDA") {
  const int count = cuda_device_count();
  // Where there are GPUs, ask for one past the last: the same error path.
  const Device missing = Device::cuda(count);
  INFO("asking for " << missing.to_string() << " with " << count << " GPU(s) visible");
  test::expect_error_containing([&] { zeros({2, 2}, {DType::f32, missing, Layout::nchw}); }, {"CUDA"});
  if (built_with_cuda())  // the CUDA build names the device it could not find
    test::expect_error_containing([&] { empty({4}, {DType::f32, missing, Layout::nchw}); },
                                  {"cuda:" + std::to_string(count), std::to_string(count) + " GPU(s) visible"});
  // And the devices that are there work: the error is only for the missing one.
  for (int index = 0; index < count; ++index) {
    CAPTURE(index);
    const Tensor t = full({2, 2}, 1.5, {DType::f32, Device::cuda(index), Layout::nchw});
    CHECK(t.to(Device::cpu()).to_vector() == std::vector<double>(4, 1.5));
  }
  CHECK((count > 0) == gpu_unavailable_reason().empty());
}

TEST_CASE("cuda: pinned host buffers are cached and round-trip through the GPU" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("pinned host memory")) return;
  const int64_t before = pinned_host_allocator().stats().system_allocations;
  for (int step = 0; step < 4; ++step) {
    Tensor staging = empty_pinned({1024, 3}, DType::f32);
    float* p = staging.data<float>();
    for (int64_t i = 0; i < staging.numel(); ++i) p[i] = static_cast<float>(i) * 0.5f + static_cast<float>(step);
    const Tensor back = staging.to(Device::cuda(0)).to(Device::cpu());
    CHECK(back.to_vector() == staging.to_vector());
  }
  CHECK(pinned_host_allocator().stats().system_allocations - before <= 1);  // one cudaHostAlloc, then the cache
}
