// value -> i64, the rule of every conversion to i64 (Tensor::to, fill) on the CPU
// (engine/tensor/factory.cpp) and on the GPU (kernels/convert.cu: the kernel, and the
// host side of fill): one function for both. It is the rule of saturate_to_u8 and
// saturate_to_i32 (engine/core/dtype.h): truncate toward zero like a C cast, then
// clamp to [INT64_MIN, INT64_MAX], and NaN -> 0. A bare cast is undefined for NaN,
// +-inf and |value| >= 2^63, and the hardware does disagree: x86's cvttsd2si gives
// INT64_MIN for all of them, sm_90's cvt.rzi.s64.f64 gives 0 for NaN and INT64_MAX for
// +inf. (Header-only and free of kiln types so that nvcc and the host compiler both
// take it.)
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif

namespace kiln {

KILN_HOST_DEVICE inline int64_t saturate_to_i64(double value) {
  if (value != value) return 0;                           // NaN
  if (value <= -9223372036854775808.0) return INT64_MIN;  // -2^63 (exact) and below
  if (value >= 9223372036854775808.0) return INT64_MAX;   // 2^63 and above
  return static_cast<int64_t>(value);                     // |value| < 2^63: exact after truncation
}

}  // namespace kiln
