#include "engine/core/dtype.h"

#include "engine/core/check.h"

namespace kiln {

namespace {
struct DTypeInfo { DType dtype; const char* name; int64_t size; bool floating; };
constexpr DTypeInfo kInfo[] = {
    {DType::f32, "f32", 4, true}, {DType::f64, "f64", 8, true}, {DType::f16, "f16", 2, true},
    {DType::bf16, "bf16", 2, true}, {DType::u8, "u8", 1, false}, {DType::i32, "i32", 4, false},
    {DType::i64, "i64", 8, false},
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == kDTypeCount, "one kInfo row per DType");
const DTypeInfo& info(DType d) { return kInfo[static_cast<int>(d)]; }
}  // namespace

const char* dtype_name(DType d) { return info(d).name; }
int64_t size_of(DType d) { return info(d).size; }
bool is_floating(DType d) { return info(d).floating; }
bool is_half(DType d) { return d == DType::f16 || d == DType::bf16; }

DType parse_dtype(const std::string& name) {
  for (const auto& row : kInfo)
    if (name == row.name) return row.dtype;
  if (name == "float32" || name == "float") return DType::f32;
  if (name == "float64" || name == "double") return DType::f64;
  if (name == "float16" || name == "half") return DType::f16;
  if (name == "bfloat16") return DType::bf16;
  KILN_FAIL("unknown dtype '", name, "': expected one of f32, f64, f16, bf16, u8, i32, i64");
}

std::string DTypeSet::to_string() const {
  std::string out = "{";
  for (const auto& row : kInfo) {
    if (!contains(row.dtype)) continue;
    if (out.size() > 1) out += ", ";
    out += row.name;
  }
  return out + "}";
}

uint16_t float_to_f16_bits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return 0x7fffu;  // NaN: CUDA's canonical half NaN, whatever the sign
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): shift the mantissa (with its hidden bit) into place,
    // rounding to nearest even on the bits shifted out.
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half of the smallest subnormal
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
  uint32_t half = ((abs - 0x38000000u) >> 13);
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float f16_bits_to_float(uint16_t bits) {
  const uint32_t sign = (bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t out;
  if (exponent == 0x1f) {
    out = mantissa ? 0x7fffffffu : sign | 0x7f800000u;  // NaN -> CUDA's canonical NaN; inf keeps its sign
  } else if (exponent == 0) {
    if (mantissa == 0) {
      out = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while (!(mantissa & 0x400u)) { mantissa <<= 1; --exponent; }
      out = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else {
    out = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &out, 4);
  return f;
}

}  // namespace kiln
