#include <doctest/doctest.h>

#include "engine/core/backend_info.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape_ops.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("tensor: shape, strides and layouts") {
  Tensor x = zeros({2, 3, 4, 5});
  CHECK(x.strides() == std::vector<int64_t>{60, 20, 5, 1});
  Tensor y = x.to(Layout::nhwc);
  CHECK(y.layout() == Layout::nhwc);
  CHECK(y.shape() == Shape{2, 3, 4, 5});  // the logical shape does not change
  CHECK(y.strides() == std::vector<int64_t>{60, 1, 15, 3});
  CHECK(x.describe() == "f32 (2, 3, 4, 5) nchw cpu");
}

TEST_CASE("tensor: nhwc round trip keeps values in logical order") {
  Rng rng(1);
  Tensor x = uniform({2, 3, 2, 2}, -1, 1, rng);
  Tensor nhwc = x.to(Layout::nhwc);
  // Memory order differs: channel 0 and 1 of pixel (0, 0) are adjacent in nhwc.
  const float* raw = nhwc.data<float>();
  const std::vector<double> logical = x.to_vector();
  CHECK(raw[1] == doctest::Approx(logical[4]));  // (n0, c1, h0, w0)
  CHECK(nhwc.to_vector() == logical);
  CHECK(nhwc.to(Layout::nchw).to_vector() == logical);
}

TEST_CASE("tensor: dtype conversions, including f16 and bf16 rounding") {
  Tensor x = from_vector({1.0, -2.5, 65504.0, 1e-8, 3.14159265}, {5});
  Tensor h = x.to(DType::f16);
  std::vector<double> back = h.to(DType::f32).to_vector();
  CHECK(back[0] == 1.0);
  CHECK(back[1] == -2.5);
  CHECK(back[2] == 65504.0);  // the largest f16
  CHECK(back[3] == doctest::Approx(0.0).epsilon(1e-7));  // under half the smallest subnormal... 1e-8 -> 0
  CHECK(back[4] == doctest::Approx(3.140625));  // nearest f16 to pi
  std::vector<double> b = x.to(DType::bf16).to_vector();
  CHECK(b[4] == doctest::Approx(3.140625));  // bf16 keeps 8 bits of mantissa: 3.140625
  CHECK(from_vector({200.7}, {1}).to(DType::u8).item() == 200);
  CHECK(from_vector({-7.9}, {1}).to(DType::i64).item() == -7);
}

TEST_CASE("tensor: f16 conversion matches round-to-nearest-even on every half") {
  // Every finite half converts to float and back unchanged.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    if ((bits & 0x7c00) == 0x7c00) continue;  // inf/NaN
    const float f = f16_bits_to_float(static_cast<uint16_t>(bits));
    REQUIRE(float_to_f16_bits(f) == bits);
  }
  // Halfway between 1 and the next half (1 + 2^-10) rounds to even: 1.
  CHECK(float_to_f16_bits(1.0f + 0.00048828125f) == 0x3c00);
  CHECK(float_to_f16_bits(1.0f + 3 * 0.00048828125f) == 0x3c02);
}

TEST_CASE("tensor: reshape is a view of row-major data, narrow0 a batch slice") {
  Rng rng(2);
  Tensor x = uniform({4, 6}, -1, 1, rng);
  Tensor v = reshape(x, {2, -1});
  CHECK(v.shape() == Shape{2, 12});
  CHECK(v.same_storage(x));
  Tensor rows = x.narrow0(1, 2);
  CHECK(rows.same_storage(x));
  CHECK(rows.to_vector()[0] == x.to_vector()[6]);
  test::expect_error_containing([&] { reshape(x, {5, 5}); }, {"reshape", "(4, 6)", "(5, 5)"});
}

TEST_CASE("tensor: clear errors for bad input") {
  Tensor a = zeros({2, 3});
  Tensor b = zeros({4, 5});
  test::expect_error_containing([&] { add(a, b); }, {"add", "(2, 3)", "(4, 5)", "broadcast"});
  test::expect_error_containing([&] { add(a, a.to(DType::f64)); }, {"add", "dtype"});
  test::expect_error_containing([&] { a.item(); }, {"item", "6 elements"});
  test::expect_error_containing([&] { parse_dtype("float128"); }, {"float128", "f32"});
  test::expect_error_containing([&] { Device::parse("tpu"); }, {"tpu", "cuda:N"});
}

// item() and to_vector() read on the host, so they refuse a device tensor and say how
// to read it (no metric or print may sync the GPU behind the caller's back); the copy
// to the CPU then reads it. Without a GPU the CUDA tensor cannot even be made, and
// that error names CUDA. Both halves run wherever the test runs.
TEST_CASE("tensor: item() of a CUDA tensor asks for .to(Device::cpu()) first, and without a GPU the error names CUDA") {
  if (gpu_unavailable_reason().empty()) {
    const Tensor on_gpu = full({1}, 2.5, {DType::f32, Device::cuda(0), Layout::nchw});
    test::expect_error_containing([&] { on_gpu.item(); }, {"item", "cuda:0", ".to(Device::cpu())"});
    test::expect_error_containing([&] { on_gpu.to_vector(); }, {"to_vector", "cuda:0"});
    CHECK(on_gpu.to(Device::cpu()).item() == 2.5);
    const Tensor two = from_vector({1, 2}, {2}).to(Device::cuda(0));
    test::expect_error_containing([&] { two.item(); }, {"item", "2 elements"});  // the count is checked first
  } else {
    MESSAGE("no GPU here (" << gpu_unavailable_reason() << "): checking that a CUDA tensor is an error naming CUDA");
    test::expect_error_containing([&] { zeros({2, 3}).to(Device::cuda(0)).item(); }, {"CUDA"});
  }
}

TEST_CASE("tensor: printing shows dtype, shape, values and statistics") {
  std::ostringstream out;
  out << from_vector({1, 2, 3}, {3});
  CHECK(out.str().find("f32 (3,) cpu") != std::string::npos);
  CHECK(out.str().find("mean 2") != std::string::npos);
}

TEST_CASE("tensor: out of memory is an error naming the size and the shape") {
  // 2^60 bytes: no machine has that, so the allocation must fail cleanly.
  test::expect_error_containing([&] { empty({int64_t{1} << 58, 4}, {DType::f32}); },
                                {"out of memory", "(288230376151711744, 4)", "cpu"});
}
