// The 16-bit float types that kernels compile against: in the KILN_CUDA=EMULATE build
// <cuda_fp16.h> and <cuda_bf16.h> are kiln's own (emulator/include/). Their
// conversions must give the same bits as kiln's CPU converters (engine/core/dtype.h),
// which give NVIDIA's: then a tensor converted by an emulated kernel equals the same
// tensor converted on the CPU. Compiled only in that build (tests/CMakeLists.txt);
// the same checks also pass against NVIDIA's own headers compiled by g++.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "engine/core/dtype.h"

namespace {

// Like the GPU's own types: two bytes, copied as bytes, usable in device buffers.
static_assert(sizeof(__half) == 2 && alignof(__half) == 2, "__half is 2 bytes");
static_assert(sizeof(__nv_bfloat16) == 2 && alignof(__nv_bfloat16) == 2, "__nv_bfloat16 is 2 bytes");
static_assert(std::is_trivially_copyable<__half>::value && std::is_standard_layout<__half>::value, "");
static_assert(std::is_trivially_copyable<__nv_bfloat16>::value && std::is_standard_layout<__nv_bfloat16>::value, "");
static_assert(std::is_trivially_default_constructible<__half>::value, "");
static_assert(std::is_trivially_default_constructible<__nv_bfloat16>::value, "");

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Random float bit patterns, NaNs included, plus values around the f16 range's edges.
std::vector<float> sampled_floats() {
  std::vector<float> out;
  std::mt19937 rng(3);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &u, 4);
    out.push_back(f);
  }
  for (float f : {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, 0x1p-24f, 0x1p-25f, 3.0e38f, 1e-45f})
    for (float sign : {1.0f, -1.0f}) out.push_back(sign * f);
  return out;
}

}  // namespace

TEST_CASE("emulated half types: float -> __half / __nv_bfloat16 give the CPU converters' bits") {
  int mismatches = 0;
  for (float f : sampled_floats()) {
    const uint16_t f16 = kiln::float_to_f16_bits(f), bf16 = kiln::float_to_bf16_bits(f);
    const bool same = __half_as_ushort(__float2half_rn(f)) == f16 && __half_as_ushort(__float2half(f)) == f16 &&
                      __half_as_ushort(__half(f)) == f16 && __bfloat16_as_ushort(__float2bfloat16_rn(f)) == bf16 &&
                      __bfloat16_as_ushort(__float2bfloat16(f)) == bf16 &&
                      __bfloat16_as_ushort(__nv_bfloat16(f)) == bf16;
    if (!same && ++mismatches <= 5) FAIL_CHECK("float bits " << bits_of(f));
  }
  CHECK(mismatches == 0);
}

TEST_CASE("emulated half types: __half / __nv_bfloat16 -> float give the CPU converters' bits, all patterns") {
  for (uint32_t k = 0; k < 0x10000u; ++k) {
    const uint16_t bits = static_cast<uint16_t>(k);
    const __half h = __ushort_as_half(bits);
    const __nv_bfloat16 b = __ushort_as_bfloat16(bits);
    CAPTURE(k);
    REQUIRE(__half_as_ushort(h) == bits);  // the raw bits round-trip
    REQUIRE(__bfloat16_as_ushort(b) == bits);
    const uint32_t f16 = bits_of(kiln::f16_bits_to_float(bits)), bf16 = bits_of(kiln::bf16_bits_to_float(bits));
    REQUIRE(bits_of(__half2float(h)) == f16);
    REQUIRE(bits_of(static_cast<float>(h)) == f16);  // operator float
    REQUIRE(bits_of(__bfloat162float(b)) == bf16);
    REQUIRE(bits_of(static_cast<float>(b)) == bf16);
  }
}
