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

// ---- 16-bit float conversions on the host (bit-exact with CUDA's __float2half_rn
// and __float2bfloat16_rn: round to nearest even, NaN kept NaN).
uint16_t float_to_f16_bits(float value);
float f16_bits_to_float(uint16_t bits);

inline uint16_t float_to_bf16_bits(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_bits_to_float(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace kiln
