// kiln's emulated-GPU <cuda_fp16.h>: the IEEE binary16 ("half") type __half and the
// conversions kiln's kernels use, for kernels compiled by g++ and run on the CPU.
//
// Why kiln has its own: NVIDIA's cuda_fp16.h pulls in the toolkit's runtime headers
// (vector_types.h, vector_functions.h) and <nv/target>, which would clash with the
// emulator's cuda_runtime.h or be missing where no toolkit is installed. The
// emulator builds with nothing but g++, so this header replaces NVIDIA's on the
// include path of the KILN_CUDA=EMULATE build. It compiles on its own (g++
// -std=c++17) and includes no other CUDA header. Everything is a plain `inline`
// function: the same code serves host code and kernel code (the emulator's
// __device__/__host__ are empty).
//
// __half: 2 bytes holding the raw bits (1 sign, 5 exponent, 10 mantissa bits);
// trivially copyable, standard layout, and default construction leaves it
// uninitialised, as NVIDIA's.
//
// The conversions equal NVIDIA's host code (cuda_fp16.hpp, CUDA 13.0) bit for bit on
// every input; scripts/check_half_conversions.sh checks all 2^32 floats:
//   float -> half: round to nearest, ties to even; magnitudes from 65520 (halfway
//     between the largest half 65504 and 2^16) up round to +-inf; results below
//     2^-14 become subnormal halves, rounded the same way. Every NaN becomes 0x7fff,
//     whatever its sign and payload (NVIDIA's canonical NaN, CUDART_NAN_FP16).
//   half -> float: exact. Every NaN becomes 0x7fffffff (sign and payload dropped).
//
// Left out on purpose: arithmetic operators (kiln's kernels compute in float, see
// kernels/common.cuh) and construction from double or integers. NVIDIA rounds a
// double to half in one step (__double2half); going through float would round twice
// and could differ in the last bit, so the emulator refuses to compile it instead.
#pragma once
#include <cstdint>
#include <cstring>

struct alignas(2) __half {
  __half() = default;  // uninitialised, like NVIDIA's: keeps the type trivial
  __half(float value);  // rounds to nearest even (defined below: __float2half_rn)
  __half(double) = delete;  // see the header comment: write __half(static_cast<float>(d))
  operator float() const;  // exact (__half2float)

 private:
  // Private as in NVIDIA's header: code that reads the bits must use __half_as_ushort,
  // so whatever compiles against the emulator also compiles with nvcc.
  unsigned short __x;
  friend unsigned short __half_as_ushort(__half h);
  friend __half __ushort_as_half(unsigned short bits);
};

inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short bits) {
  __half h;
  h.__x = bits;
  return h;
}

inline __half __float2half_rn(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;  // float's sign bit, moved to bit 15
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return __ushort_as_half(0x7fffu);  // NaN: the canonical half NaN
  if (abs >= 0x477ff000u) return __ushort_as_half(static_cast<unsigned short>(sign | 0x7c00u));  // >= 65520: inf
  // Keep the top bits of the result in `bits` and round on the bits dropped (`rest`,
  // `shift` of them): up when rest is over half an ulp, or exactly half and bits odd.
  // A carry out of the mantissa correctly bumps the exponent (to the next binade, or
  // from the largest subnormal to the smallest normal).
  uint32_t bits, rest, shift;
  if (abs >= 0x38800000u) {  // |value| >= 2^-14: a normal half. Rebias the exponent 127 -> 15.
    shift = 13;
    bits = (abs - 0x38000000u) >> shift;
    rest = abs & 0x1fffu;
  } else if (abs < 0x33000000u) {  // below 2^-25, half the smallest subnormal: rounds to zero
    return __ushort_as_half(static_cast<unsigned short>(sign));
  } else {  // a subnormal half: the mantissa with its hidden bit, shifted into place
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    shift = 126 - (abs >> 23);  // 14 (just under 2^-14) .. 24 (2^-25)
    bits = mantissa >> shift;
    rest = mantissa & ((1u << shift) - 1);
  }
  const uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (bits & 1u))) ++bits;
  return __ushort_as_half(static_cast<unsigned short>(sign | bits));
}
// NVIDIA defines __float2half as round to nearest even too.
inline __half __float2half(float value) { return __float2half_rn(value); }

inline float __half2float(__half h) {
  const uint32_t bits = __half_as_ushort(h);
  const uint32_t sign = (bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  uint32_t out;
  if (exponent == 0x1fu) {  // inf keeps its sign; NaN becomes the canonical float NaN
    out = mantissa != 0 ? 0x7fffffffu : sign | 0x7f800000u;
  } else if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // 2^-24
    std::memcpy(&out, &magnitude, 4);
    out |= sign;
  } else {  // normal: rebias the exponent 15 -> 127, widen the mantissa 10 -> 23 bits
    out = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &out, 4);
  return f;
}

inline __half::__half(float value) : __x(__half_as_ushort(__float2half_rn(value))) {}
inline __half::operator float() const { return __half2float(*this); }
