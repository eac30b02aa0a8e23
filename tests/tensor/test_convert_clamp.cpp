// Conversions to u8, i32 and i64 saturate: truncate toward zero like a C cast, then
// clamp to the type's range, NaN -> 0 (engine/core/dtype.h, engine/core/saturate_i64.h). A plain cast of an
// out-of-range value is undefined and differed between the CPU and the GPU kernel
// (kernels/convert.cu, which follows the same rule now; its parity with the CPU is
// checked with the GPU tests).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/core/saturate_i64.h"
#include "engine/tensor/factory.h"

using namespace kiln;

namespace {
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<double> kValues = {-5.7, 300.2, 1e20, -1e20, kNaN, kInf, -kInf, 254.9, 255.0, 0.99, -0.99, 7.5};
}  // namespace

TEST_CASE("convert clamp: to u8 truncates, clamps to 0..255 and maps NaN to 0") {
  const std::vector<double> want = {0, 255, 255, 0, 0, 255, 0, 254, 255, 0, 0, 7};
  for (DType from : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(from));
    const Tensor x = from_vector(kValues, {static_cast<int64_t>(kValues.size())}, {from});
    CHECK(x.to(DType::u8).to_vector() == want);
  }
  CHECK(full({3}, 300.2, {DType::u8}).to_vector() == std::vector<double>{255, 255, 255});  // fill too
  CHECK(full({2}, -1.0, {DType::u8}).to_vector() == std::vector<double>{0, 0});
}

TEST_CASE("convert clamp: to i32 truncates, clamps to the int32 range and maps NaN to 0") {
  const double lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  const std::vector<double> want = {-5, 300, hi, lo, 0, hi, lo, 254, 255, 0, 0, 7};
  for (DType from : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(from));
    const Tensor x = from_vector(kValues, {static_cast<int64_t>(kValues.size())}, {from});
    CHECK(x.to(DType::i32).to_vector() == want);
  }
  // The range's ends: the largest int32 and just past it, the smallest and just past it.
  const Tensor ends =
      from_vector({2147483647.0, 2147483648.5, -2147483648.0, -2147483649.5, -2147483648.9}, {5}, {DType::f64});
  CHECK(ends.to(DType::i32).to_vector() == std::vector<double>{hi, hi, lo, lo, lo});
  CHECK(full({2}, -1e20, {DType::i32}).to_vector() == std::vector<double>{lo, lo});  // fill too
}

TEST_CASE("convert clamp: to i64 truncates, clamps to the int64 range and maps NaN to 0") {
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  // Compared as int64 (to_vector's doubles cannot hold INT64_MAX).
  const std::vector<int64_t> want = {-5, 300, hi, lo, 0, hi, lo, 254, 255, 0, 0, 7};
  for (DType from : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(from));
    const Tensor x = from_vector(kValues, {static_cast<int64_t>(kValues.size())}, {from}).to(DType::i64);
    CHECK(std::vector<int64_t>(x.data<int64_t>(), x.data<int64_t>() + x.numel()) == want);
  }
  // The range's ends: 2^63 is past the largest int64, -2^63 is the smallest, and the
  // largest double below 2^63 converts exactly.
  CHECK(saturate_to_i64(9223372036854775808.0) == hi);
  CHECK(saturate_to_i64(-9223372036854775808.0) == lo);
  CHECK(saturate_to_i64(9223372036854774784.0) == 9223372036854774784LL);
  CHECK(saturate_to_i64(-7.9) == -7);
  CHECK(saturate_to_i64(kNaN) == 0);
  const Tensor filled = full({2}, kInf, {DType::i64});  // fill too
  CHECK(filled.data<int64_t>()[0] == hi);
  CHECK(filled.data<int64_t>()[1] == hi);
}

TEST_CASE("convert clamp: saturate_to_u8 and saturate_to_i32 on their own") {
  CHECK(saturate_to_u8(-5.7) == 0);
  CHECK(saturate_to_u8(300.2) == 255);
  CHECK(saturate_to_u8(kNaN) == 0);
  CHECK(saturate_to_u8(254.999) == 254);
  CHECK(saturate_to_i32(kNaN) == 0);
  CHECK(saturate_to_i32(-kInf) == std::numeric_limits<int32_t>::min());
  CHECK(saturate_to_i32(-7.9) == -7);
  CHECK(saturate_to_i32(1e20) == std::numeric_limits<int32_t>::max());
}
