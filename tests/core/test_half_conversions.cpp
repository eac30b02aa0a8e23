// kiln's CPU conversions between float and the 16-bit types f16 / bf16
// (engine/core/dtype.h). They must give CUDA's bits exactly, so that a tensor
// converted on the CPU equals the same tensor converted on a GPU (or the emulator).
//
// Two kinds of checks:
// - a reference written from first principles: the result is the 16-bit value nearest
//   the input, ties to the even bit pattern, with 2^16 (f16) / 2^128 (bf16) standing
//   for infinity, the next step after the largest finite value. It is run on a few
//   hundred thousand inputs: every tie point, its neighbours one float ulp away, and
//   random floats;
// - outputs of NVIDIA's own code recorded as constants (NaN -> 0x7fff etc.): where
//   IEEE leaves the choice open, CUDA's choice is the rule.
// scripts/check_half_conversions.sh compares all 2^32 floats with NVIDIA's headers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "engine/core/dtype.h"

using namespace kiln;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// A 16-bit float format: `mantissa_bits` stored mantissa bits, the rest (but the
// sign) exponent. value(k) is the magnitude of bit pattern k (sign bit clear) as a
// double, exactly; the all-ones exponent with mantissa 0 comes out as 2^16 (f16) or
// 2^128 (bf16): the value where rounding overflows to infinity.
struct Format {
  int mantissa_bits;
  int bias;
  uint32_t inf_bits;
  double value(uint32_t k) const {
    const uint32_t exponent = k >> mantissa_bits, mantissa = k & ((1u << mantissa_bits) - 1);
    if (exponent == 0) return std::ldexp(mantissa, 1 - bias - mantissa_bits);  // subnormal
    return std::ldexp(mantissa + (1u << mantissa_bits), static_cast<int>(exponent) - bias - mantissa_bits);
  }
  // The nearest pattern to a finite float, ties to even: a binary search for the
  // patterns on either side of |x| (value() increases with the pattern).
  uint16_t round(float x) const {
    const double magnitude = std::fabs(static_cast<double>(x));
    const uint32_t sign = std::signbit(x) ? 0x8000u : 0u;
    if (magnitude >= value(inf_bits)) return static_cast<uint16_t>(sign | inf_bits);
    uint32_t low = 0, high = inf_bits;  // value(low) <= magnitude < value(high)
    while (high - low > 1) {
      const uint32_t mid = (low + high) / 2;
      (value(mid) <= magnitude ? low : high) = mid;
    }
    const double below = magnitude - value(low), above = value(high) - magnitude;
    const uint32_t k = below < above ? low : above < below ? high : (low % 2 == 0 ? low : high);
    return static_cast<uint16_t>(sign | k);
  }
};
constexpr Format kF16{10, 15, 0x7c00u};
constexpr Format kBF16{7, 127, 0x7f80u};

// Inputs where rounding is decided: every midpoint between neighbouring patterns of
// `format` that is a float (all are, for f16 and bf16), one float ulp either side of
// it, and the patterns' own values; both signs. Plus random float bit patterns.
std::vector<float> edge_and_random_inputs(const Format& format) {
  std::vector<float> inputs;
  for (uint32_t k = 0; k < format.inf_bits; ++k) {
    const float midpoint = static_cast<float>((format.value(k) + format.value(k + 1)) / 2);  // exact
    for (float x : {midpoint, std::nextafter(midpoint, 0.0f), std::nextafter(midpoint, INFINITY),
                    static_cast<float>(format.value(k))}) {
      inputs.push_back(x);
      inputs.push_back(-x);
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const float x = from_bits(static_cast<uint32_t>(rng()));
    if (!std::isnan(x)) inputs.push_back(x);
  }
  return inputs;
}

}  // namespace

TEST_CASE("half conversions: float -> f16 is the nearest half, ties to even, on edge and random inputs") {
  const std::vector<float> inputs = edge_and_random_inputs(kF16);
  CHECK(inputs.size() > 300000);
  int mismatches = 0;
  for (float x : inputs) {
    const uint16_t want = kF16.round(x), got = float_to_f16_bits(x);
    if (got != want && ++mismatches <= 5) FAIL_CHECK("float bits " << to_bits(x) << ": got " << got << ", want " << want);
  }
  CHECK(mismatches == 0);
}

TEST_CASE("half conversions: float -> bf16 is the nearest bfloat16, ties to even, on edge and random inputs") {
  const std::vector<float> inputs = edge_and_random_inputs(kBF16);
  CHECK(inputs.size() > 300000);
  int mismatches = 0;
  for (float x : inputs) {
    const uint16_t want = kBF16.round(x), got = float_to_bf16_bits(x);
    if (got != want && ++mismatches <= 5) FAIL_CHECK("float bits " << to_bits(x) << ": got " << got << ", want " << want);
  }
  CHECK(mismatches == 0);
}

TEST_CASE("half conversions: f16 and bf16 -> float are exact for every non-NaN pattern") {
  for (uint32_t k = 0; k < 0x10000u; ++k) {
    const uint16_t bits = static_cast<uint16_t>(k);
    const double sign = (k & 0x8000u) ? -1.0 : 1.0;
    const uint32_t magnitude = k & 0x7fffu;
    if (magnitude <= 0x7c00u) {
      const double want = magnitude == 0x7c00u ? sign * INFINITY : sign * kF16.value(magnitude);
      REQUIRE(f16_bits_to_float(bits) == want);
      REQUIRE(std::signbit(f16_bits_to_float(bits)) == (sign < 0));  // -0 stays -0
    }
    if (magnitude <= 0x7f80u) {
      const double want = magnitude == 0x7f80u ? sign * INFINITY : sign * kBF16.value(magnitude);
      REQUIRE(bf16_bits_to_float(bits) == want);
      REQUIRE(std::signbit(bf16_bits_to_float(bits)) == (sign < 0));
    }
  }
}

// What NVIDIA's __float2half_rn / __half2float / __float2bfloat16_rn / __bfloat162float
// return (cuda_fp16.hpp, cuda_bf16.hpp of CUDA 13.0), recorded.
TEST_CASE("half conversions: NaN, infinity, overflow and subnormal edges give CUDA's bits") {
  // Every NaN, of either sign and any payload, becomes the canonical NaN 0x7fff.
  for (uint32_t nan : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0xffffffffu, 0x7fa00000u}) {
    CAPTURE(nan);
    CHECK(float_to_f16_bits(from_bits(nan)) == 0x7fffu);
    CHECK(float_to_bf16_bits(from_bits(nan)) == 0x7fffu);
  }
  CHECK(float_to_f16_bits(INFINITY) == 0x7c00u);
  CHECK(float_to_f16_bits(-INFINITY) == 0xfc00u);
  CHECK(float_to_bf16_bits(INFINITY) == 0x7f80u);
  CHECK(float_to_bf16_bits(-INFINITY) == 0xff80u);
  CHECK(float_to_f16_bits(-0.0f) == 0x8000u);
  CHECK(float_to_bf16_bits(-0.0f) == 0x8000u);

  // f16 overflow: 65504 is the largest half; from 65520 (halfway to 2^16) on, inf.
  CHECK(float_to_f16_bits(65504.0f) == 0x7bffu);
  CHECK(float_to_f16_bits(from_bits(0x477fefffu)) == 0x7bffu);  // just under 65520
  CHECK(float_to_f16_bits(65520.0f) == 0x7c00u);
  CHECK(float_to_f16_bits(-65520.0f) == 0xfc00u);
  CHECK(float_to_f16_bits(1e10f) == 0x7c00u);
  // bf16 overflow: 0x7f7f is the largest; from halfway to 2^128 (0x7f7f8000) on, inf.
  CHECK(float_to_bf16_bits(from_bits(0x7f7f7fffu)) == 0x7f7fu);
  CHECK(float_to_bf16_bits(from_bits(0x7f7f8000u)) == 0x7f80u);
  CHECK(float_to_bf16_bits(from_bits(0x7f7fffffu)) == 0x7f80u);  // FLT_MAX

  // Ties go to the even pattern.
  CHECK(float_to_f16_bits(1.0f + 0x1p-11f) == 0x3c00u);      // halfway 1 .. 1 + 2^-10: down to even
  CHECK(float_to_f16_bits(1.0f + 3 * 0x1p-11f) == 0x3c02u);  // halfway 0x3c01 .. 0x3c02: up to even
  CHECK(float_to_bf16_bits(from_bits(0x3f808000u)) == 0x3f80u);
  CHECK(float_to_bf16_bits(from_bits(0x3f818000u)) == 0x3f82u);

  // f16 subnormals: 2^-24 is the smallest; 2^-25 is a tie with zero and goes to 0.
  CHECK(float_to_f16_bits(0x1p-24f) == 0x0001u);
  CHECK(float_to_f16_bits(0x1p-25f) == 0x0000u);
  CHECK(float_to_f16_bits(from_bits(0x33000001u)) == 0x0001u);  // just above 2^-25
  CHECK(float_to_f16_bits(1.5f * 0x1p-24f) == 0x0002u);          // tie between 1 and 2: even
  CHECK(float_to_f16_bits(-0x1p-24f) == 0x8001u);
  CHECK(float_to_f16_bits(0x1p-14f - 0x1p-25f) == 0x0400u);      // rounds up into the smallest normal
  CHECK(float_to_f16_bits(1e-30f) == 0x0000u);
  // bf16 keeps float's subnormals: the smallest float subnormal rounds to zero.
  CHECK(float_to_bf16_bits(from_bits(0x00010000u)) == 0x0001u);
  CHECK(float_to_bf16_bits(from_bits(0x00000001u)) == 0x0000u);

  // Back to float: a half NaN becomes the float NaN 0x7fffffff (sign and payload
  // dropped); a bf16 NaN keeps its bits; infinities keep their sign.
  for (uint16_t nan : {0x7c01, 0x7e00, 0x7fff, 0xfc01, 0xfe00, 0xffff}) CHECK(to_bits(f16_bits_to_float(nan)) == 0x7fffffffu);
  CHECK(to_bits(f16_bits_to_float(0xfc00u)) == 0xff800000u);
  CHECK(to_bits(bf16_bits_to_float(0xffc1u)) == 0xffc10000u);
  CHECK(to_bits(bf16_bits_to_float(0x7fffu)) == 0x7fff0000u);
}
