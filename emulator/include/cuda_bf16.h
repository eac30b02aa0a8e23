// kiln's emulated-GPU <cuda_bf16.h>: the bfloat16 type __nv_bfloat16 and the
// conversions kiln's kernels use, for kernels compiled by g++ and run on the CPU.
//
// Why kiln has its own: NVIDIA's cuda_bf16.h pulls in the toolkit's runtime headers
// (vector_types.h, vector_functions.h) and <nv/target>, which would clash with the
// emulator's cuda_runtime.h or be missing where no toolkit is installed. The
// emulator builds with nothing but g++, so this header replaces NVIDIA's on the
// include path of the KILN_CUDA=EMULATE build. Like NVIDIA's, it also includes
// cuda_fp16.h (kiln's, from this folder: the quotes make sure); it includes nothing
// else from CUDA. Every function is plain `inline`, for host code and kernel code.
//
// __nv_bfloat16: 2 bytes holding the raw bits, the upper half of a float (1 sign,
// 8 exponent, 7 mantissa bits): the same range as float with 8 bits of precision.
// Trivially copyable, standard layout; default construction leaves it uninitialised.
//
// The conversions equal NVIDIA's host code (cuda_bf16.hpp, CUDA 13.0) bit for bit on
// every input; scripts/check_half_conversions.sh checks all 2^32 floats:
//   float -> bf16: round to nearest, ties to even, on the 16 bits dropped; floats from
//     halfway past the largest bf16 (0x7f7f...) up round to +-inf; subnormal floats
//     round like any other. Every NaN becomes 0x7fff, whatever its sign and payload
//     (NVIDIA's canonical NaN, CUDART_NAN_BF16).
//   bf16 -> float: exact, the bits shifted up by 16 (a NaN keeps its sign and payload).
//
// Left out on purpose, as in cuda_fp16.h: arithmetic operators and construction from
// double or integers (NVIDIA rounds a double to bf16 in one step; through float would
// round twice).
#pragma once
#include "cuda_fp16.h"

#include <cstdint>
#include <cstring>

struct alignas(2) __nv_bfloat16 {
  __nv_bfloat16() = default;  // uninitialised, like NVIDIA's: keeps the type trivial
  __nv_bfloat16(float value);  // rounds to nearest even (__float2bfloat16_rn)
  __nv_bfloat16(double) = delete;  // see the header comment
  operator float() const;  // exact (__bfloat162float)

 private:
  // Private as in NVIDIA's header: bits are read with __bfloat16_as_ushort.
  unsigned short __x;
  friend unsigned short __bfloat16_as_ushort(__nv_bfloat16 b);
  friend __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits);
};

inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) {
  __nv_bfloat16 b;
  b.__x = bits;
  return b;
}

inline __nv_bfloat16 __float2bfloat16_rn(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16(0x7fffu);  // NaN: the canonical bf16 NaN
  // Round to nearest even on the low 16 bits: adding 0x7fff carries into bit 16 when
  // they are over 0x8000; adding one more when the kept lowest bit is odd makes
  // exactly 0x8000 (a tie) carry too. A carry into the exponent is right, up to inf.
  u += 0x7fffu + ((u >> 16) & 1u);
  return __ushort_as_bfloat16(static_cast<unsigned short>(u >> 16));
}
// NVIDIA defines __float2bfloat16 as round to nearest even too.
inline __nv_bfloat16 __float2bfloat16(float value) { return __float2bfloat16_rn(value); }

inline float __bfloat162float(__nv_bfloat16 b) {
  const uint32_t u = static_cast<uint32_t>(__bfloat16_as_ushort(b)) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline __nv_bfloat16::__nv_bfloat16(float value) : __x(__bfloat16_as_ushort(__float2bfloat16_rn(value))) {}
inline __nv_bfloat16::operator float() const { return __bfloat162float(*this); }
