// Precision names and their settings (see precision.h).
#include "engine/train/precision.h"

#include "engine/core/backend_info.h"
#include "engine/core/check.h"

namespace kiln::train {

Precision parse_precision(const std::string& name) {
  if (name == "f32") return Precision::f32;
  if (name == "tf32") return Precision::tf32;
  if (name == "bf16") return Precision::bf16;
  if (name == "f16") return Precision::f16;
  KILN_FAIL("--precision: unknown precision '", name, "' (valid: f32, tf32, bf16, f16)");
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::f32: return "f32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
    case Precision::f16: return "f16";
  }
  return "?";
}

std::optional<DType> autocast_dtype_of(Precision precision) {
  if (precision == Precision::bf16) return DType::bf16;
  if (precision == Precision::f16) return DType::f16;
  return std::nullopt;
}

void set_math_mode(Precision precision, const Device& device) {
  if (device.is_cuda()) set_tf32(device, precision == Precision::tf32);
}

}  // namespace kiln::train
