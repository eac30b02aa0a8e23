// Element types. f64 exists for gradient checks on the CPU; f16 and bf16 are the
// storage types of mixed precision on the GPU (the CPU converts them, it does not
// compute in them); u8 holds images; i32/i64 hold labels and indices.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace kiln {

enum class DType { f32, f64, f16, bf16, u8, i32, i64 };
constexpr int kDTypeCount = 7;  // keep in step with DType (dtype.cpp static_asserts it)

const char* dtype_name(DType dtype);      // "f32"
DType parse_dtype(const std::string& name);  // throws, listing the valid names
int64_t size_of(DType dtype);             // bytes per element
bool is_floating(DType dtype);            // f32 f64 f16 bf16
bool is_half(DType dtype);                // f16 bf16: GPU storage types

// A small set of dtypes, used by the op table to say what each backend supports.
class DTypeSet {
 public:
  constexpr DTypeSet() = default;
  constexpr DTypeSet(std::initializer_list<DType> dtypes) {
    for (DType d : dtypes) bits_ |= 1u << static_cast<unsigned>(d);
  }
  constexpr bool contains(DType d) const { return bits_ & (1u << static_cast<unsigned>(d)); }
  std::string to_string() const;  // "{f32, f64}"

 private:
  unsigned bits_ = 0;
};

// ---- 16-bit float conversions on the host, bit for bit those of CUDA's
// __float2half_rn, __half2float, __float2bfloat16_rn and __bfloat162float (as
// cuda_fp16.hpp / cuda_bf16.hpp compute them on the host; the emulator's headers
// emulator/include/cuda_fp16.h, cuda_bf16.h give the same bits). Round to nearest,
// ties to even; too large -> +-inf; every NaN -> 0x7fff, CUDA's canonical NaN (sign
// and payload dropped); a half NaN -> float 0x7fffffff; a bf16 NaN -> float keeps its
// bits. scripts/check_half_conversions.sh compares all 2^32 floats with NVIDIA's code.
uint16_t float_to_f16_bits(float value);
float f16_bits_to_float(uint16_t bits);

inline uint16_t float_to_bf16_bits(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  // NaN: CUDA's canonical bf16 NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (carries into bit 16)
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_bits_to_float(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- value -> u8 / i32, the rule of every conversion to those dtypes (Tensor::to,
// fill) on the CPU (engine/tensor/factory.cpp); the GPU's convert kernel
// (kernels/convert.cu) has device twins of these with the same rule. Truncate toward
// zero like a C cast, then saturate: clamp to [0, 255] / [INT32_MIN, INT32_MAX], and
// NaN -> 0. (A C cast of an out-of-range value is undefined behaviour, and backends
// do disagree: compiled by g++ for x86, 300.2 -> u8 gives 44 and -5.7 gives 251.)
inline uint8_t saturate_to_u8(double value) {
  if (!(value > 0)) return 0;  // negatives, -0 and NaN (every comparison with NaN is false)
  return value < 255 ? static_cast<uint8_t>(value) : 255;
}
inline int32_t saturate_to_i32(double value) {
  if (value != value) return 0;  // NaN
  if (value <= -2147483648.0) return INT32_MIN;
  if (value >= 2147483647.0) return INT32_MAX;
  return static_cast<int32_t>(value);
}

}  // namespace kiln
