// The numeric precision of a training or inference run, `--precision` of `kiln
// train` and `kiln bench`:
//
//   f32    everything f32, and f32 math exact (no TF32 on the GPU)
//   tf32   everything f32; on the GPU, convolutions and GEMMs use TF32 tensor cores
//          (f32 range, 10-bit mantissa, f32 accumulation): the f32 of PyTorch's
//          allow_tf32. On the CPU the same as f32.
//   bf16   autocast to bf16 (engine/autograd/autocast.h): convolutions and GEMMs in
//          bf16, f32 master weights, f32 batch-norm statistics, f32 loss
//   f16    autocast to f16, plus dynamic loss scaling (engine/optim/loss_scaler.h),
//          because f16's small exponent range flushes small gradients to zero
#pragma once
#include <optional>
#include <string>

#include "engine/core/device.h"
#include "engine/core/dtype.h"

namespace kiln::train {

enum class Precision { f32, tf32, bf16, f16 };

// "f32", "tf32", "bf16", "f16"; anything else throws listing them.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision precision);
// The autocast dtype (bf16, f16) or nullopt for f32 and tf32.
std::optional<DType> autocast_dtype_of(Precision precision);
inline bool needs_loss_scaling(Precision precision) { return precision == Precision::f16; }
// Sets the f32 math of `device` for `precision`: TF32 allowed for tf32 only (a
// setting of the device's CUDA context, read by cuBLAS and cuDNN calls). Nothing to
// set on the CPU.
void set_math_mode(Precision precision, const Device& device);

}  // namespace kiln::train
