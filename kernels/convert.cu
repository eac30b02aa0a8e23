// Dtype and layout conversion, and fill, on the GPU (declared in engine/cuda/memory_ops.h).
//
// convert:  dst[memory offset of logical index i in dst] = cast(src[memory offset of i in src])
//   src, dst: the same shape on one device; any of f32 f64 f16 bf16 u8 i32 i64;
//   layout nchw (row-major) or nhwc (channels-last, 4-D only) on either side.
//   One kernel does both jobs: a thread walks dst in memory order (coalesced
//   writes) and reads src through an OffsetCalculator (a gather when layouts differ).
//   Values pass through double, as in the CPU path (engine/tensor/factory.cpp), so
//   that both give the same bits: f32 -> bf16 rounds to nearest even, like
//   float_to_bf16_bits; to u8 / i32 truncates and saturates (NaN -> 0), like
//   saturate_to_u8 / saturate_to_i32. Same dtype and only a layout change: bits are copied.
//   Bytes moved per element: sizeof(src) + sizeof(dst).
//
// fill:  dst[i] = value for all i. The host converts value to dst's dtype once (with
//   the CPU's conversion functions, so the bits agree), and the kernel stores
//   that bit pattern. Zero is a cudaMemsetAsync. Bytes per element: sizeof(dst).
#include <cstring>

#include "engine/core/saturate_i64.h"
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/memory_ops.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

// ---- element access through double, the device twin of load()/store() in factory.cpp.
__device__ __forceinline__ double load_as_double(const void* base, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(base)[i];
    case DType::f64: return static_cast<const double*>(base)[i];
    case DType::f16: return __half2float(static_cast<const __half*>(base)[i]);
    case DType::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
    case DType::u8: return static_cast<const uint8_t*>(base)[i];
    case DType::i32: return static_cast<const int32_t*>(base)[i];
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(base)[i]);
  }
  return 0.0;
}

// float -> bf16 bits with exactly the host's rule (engine/core/dtype.h): round to
// nearest even, every NaN -> 0x7fff. That is also __float2bfloat16_rn's rule; spelled
// out so that the bits do not depend on which GPU runs it (cvt.rn.bf16.f32 exists
// from sm_80 on, older GPUs take a software path).
__device__ __forceinline__ uint16_t float_to_bf16_bits_device(float value) {
  uint32_t u = __float_as_uint(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  // NaN: CUDA's canonical bf16 NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

// Saturating conversions, the device twins of saturate_to_u8 / saturate_to_i32 in
// engine/core/dtype.h, same rule: truncate toward zero, clamp to [0, 255] /
// [INT32_MIN, INT32_MAX], NaN -> 0. (A bare cast of an out-of-range value is
// undefined: the CPU and the GPU would disagree.) i64 has one host-device function
// for both sides, saturate_to_i64 (engine/core/saturate_i64.h).
__device__ __forceinline__ uint8_t saturate_to_u8_device(double value) {
  if (!(value > 0)) return 0;  // negatives, -0 and NaN
  return value < 255 ? static_cast<uint8_t>(value) : 255;
}
__device__ __forceinline__ int32_t saturate_to_i32_device(double value) {
  if (value != value) return 0;  // NaN
  if (value <= -2147483648.0) return INT32_MIN;
  if (value >= 2147483647.0) return INT32_MAX;
  return static_cast<int32_t>(value);
}

__device__ __forceinline__ void store_from_double(void* base, DType dtype, int64_t i, double v) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(base)[i] = static_cast<float>(v); break;
    case DType::f64: static_cast<double*>(base)[i] = v; break;
    // Through float first, as the CPU does (double -> f16 directly could round differently).
    case DType::f16: static_cast<__half*>(base)[i] = __float2half_rn(static_cast<float>(v)); break;
    case DType::bf16: static_cast<uint16_t*>(base)[i] = float_to_bf16_bits_device(static_cast<float>(v)); break;
    case DType::u8: static_cast<uint8_t*>(base)[i] = saturate_to_u8_device(v); break;
    case DType::i32: static_cast<int32_t*>(base)[i] = saturate_to_i32_device(v); break;
    case DType::i64: static_cast<int64_t*>(base)[i] = saturate_to_i64(v); break;
  }
}

// The dtype switch is the same for every thread, so it costs a few instructions
// per element of a kernel that is bound by memory bandwidth anyway.
template <bool kSameOrder>
__global__ void convert_kernel(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n,
                               OffsetCalculator<1> src_at) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    int64_t src_offset = i;
    if (!kSameOrder) {
      int64_t offsets[1];
      src_at.offsets(i, offsets);
      src_offset = offsets[0];
    }
    store_from_double(dst, dst_dtype, i, load_as_double(src, src_dtype, src_offset));
  }
}

template <class T>
__global__ void fill_kernel(T* dst, T bits, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) { dst[i] = bits; }
}

OffsetCalculator<1> source_offsets_in_destination_order(const Tensor& src, const Tensor& dst, const char* op) {
  const std::vector<int> order = memory_order(dst);
  const std::vector<int64_t> src_strides = src.strides();
  std::vector<int64_t> sizes(order.size());
  std::vector<int64_t> strides[1] = {std::vector<int64_t>(order.size())};
  for (size_t k = 0; k < order.size(); ++k) {
    sizes[k] = src.shape()[order[k]];
    strides[0][k] = src_strides[order[k]];
  }
  return make_offset_calculator<1>(sizes, strides, op);
}

}  // namespace

void convert(const Tensor& src, const Tensor& dst) {
  KILN_CHECK(src.shape() == dst.shape(), "convert: source ", src.describe(), " and destination ", dst.describe(),
             " differ in shape");
  KILN_CHECK(src.device() == dst.device() && src.device().is_cuda(), "convert: both tensors must be on one CUDA ",
             "device, got ", src.describe(), " and ", dst.describe());
  const int64_t n = src.numel();
  if (n == 0) return;
  if (src.dtype() == dst.dtype()) {  // a pure layout change: move the bits, whatever they are
    gather_copy(src, dst, source_offsets_in_destination_order(src, dst, "convert"), "convert");
    return;
  }
  Context& ctx = context_for(dst);
  set_device(ctx);
  const bool same_order = src.layout() == dst.layout() || src.dim() != 4;
  if (same_order) {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), convert_kernel<true>)(src.raw_data(), src.dtype(), dst.raw_data(),
                                                                       dst.dtype(), n, OffsetCalculator<1>{});
  } else {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), convert_kernel<false>)(
        src.raw_data(), src.dtype(), dst.raw_data(), dst.dtype(), n,
        source_offsets_in_destination_order(src, dst, "convert"));
  }
  KILN_CHECK_LAUNCH("convert");
}

void fill(const Tensor& dst, double value) {
  KILN_CHECK(dst.device().is_cuda(), "fill: expected a CUDA tensor, got ", dst.describe());
  const int64_t n = dst.numel();
  if (n == 0) return;
  // The element's bits, converted on the host exactly as the CPU fill converts.
  uint64_t bits = 0;
  switch (dst.dtype()) {
    case DType::f32: { const float v = static_cast<float>(value); std::memcpy(&bits, &v, 4); break; }
    case DType::f64: std::memcpy(&bits, &value, 8); break;
    case DType::f16: bits = float_to_f16_bits(static_cast<float>(value)); break;
    case DType::bf16: bits = float_to_bf16_bits(static_cast<float>(value)); break;
    case DType::u8: bits = saturate_to_u8(value); break;
    case DType::i32: { const int32_t v = saturate_to_i32(value); std::memcpy(&bits, &v, 4); break; }
    case DType::i64: { const int64_t v = saturate_to_i64(value); std::memcpy(&bits, &v, 8); break; }
  }
  Context& ctx = context_for(dst);
  set_device(ctx);
  if (bits == 0) {  // zeros (and +0.0) are all-zero bytes: the driver's memset is fastest
    CUDA_CHECK(cudaMemsetAsync(dst.raw_data(), 0, static_cast<size_t>(dst.nbytes()), ctx.stream()));
    return;
  }
  KILN_DISPATCH_CUDA_ELEMENT_SIZE(dst.dtype(), "fill", {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), fill_kernel<element_t>)(static_cast<element_t*>(dst.raw_data()),
                                                                         static_cast<element_t>(bits), n);
    KILN_CHECK_LAUNCH("fill");
  });
}

}  // namespace kiln::cuda
