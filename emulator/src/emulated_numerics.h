// Number formats the emulated cuBLAS and cuDNN (cublas.cpp, cudnn_*.cpp) read and
// write: IEEE binary16 (__half), bfloat16 and TF32, as raw bits. Written here rather
// than taken from cuda_fp16.h so that the libraries are a second opinion on kiln's
// own conversions (engine/core/dtype.h), not the same code run twice.
//
// Every float -> 16-bit conversion rounds to nearest, ties to even, like CUDA's
// __float2half_rn / __float2bfloat16_rn; overflow gives inf, and every NaN becomes
// NVIDIA's canonical 0x7fff (in both formats), as the kernels' stores write it. A half
// NaN reads back as the canonical float NaN 0x7fffffff, as __half2float gives it.
// TF32 (what tensor cores read for f32 data): the sign, f32's 8 exponent bits and the
// top 10 mantissa bits, rounded to nearest even; kept in a float.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace kiln::emulator::numerics {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bits_float(mantissa ? 0x7fffffffu : sign | 0x7f800000u);  // NaN, inf
  return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t magnitude = x & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return 0x7fffu;  // NaN
  if (magnitude >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65536 (or inf): inf
  if (magnitude < 0x38800000u) {  // below 2^-14: a half subnormal (or zero), in units of 2^-24
    const float units = bits_float(magnitude) * 16777216.0f;                    // exact: a power-of-two scale
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(units)));  // nearest even
  }
  uint32_t h = ((((magnitude >> 23) - 112) << 10) | ((magnitude >> 13) & 0x3ffu));
  const uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry may reach inf: correct
  return static_cast<uint16_t>(sign | h);
}

inline float bfloat16_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

inline uint16_t float_to_bfloat16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  // NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float round_to_tf32(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7f800000u) == 0x7f800000u) return f;  // inf and NaN unchanged
  x += 0xfffu + ((x >> 13) & 1u);
  return bits_float(x & ~0x1fffu);
}

// The rounding a "fast" compute mode applies to the multiplicands before the product.
enum class InputRounding { none, tf32, half, bfloat16 };

inline float round_input(float f, InputRounding r) {
  switch (r) {
    case InputRounding::none: return f;
    case InputRounding::tf32: return round_to_tf32(f);
    case InputRounding::half: return half_to_float(float_to_half(f));
    case InputRounding::bfloat16: return bfloat16_to_float(float_to_bfloat16(f));
  }
  return f;
}

}  // namespace kiln::emulator::numerics
