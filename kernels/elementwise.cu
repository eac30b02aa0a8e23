// Element-wise arithmetic on the GPU (engine/ops/elementwise.h).
//
// binary_forward:  out = a (op) b, op in {add, sub, mul, div}, with broadcasting.
//   out has the broadcast shape of a and b, in its own layout; a and b are read
//   through their broadcast strides (0 along a broadcast dim, e.g. a bias (C, 1, 1)
//   against (N, C, H, W)). Threads walk out in memory order (coalesced writes).
//   Fast path: a, b and out with one shape and one layout are plain arrays, and the
//   kernel indexes all three with i (no division per element).
//   Bytes moved per element: 3 * sizeof(T) (fewer when an input is broadcast and
//   stays in cache).
//
// affine_scalar_forward:  y = alpha * x + beta          2 * sizeof(T) per element
// pow_scalar_forward:     y = x^p (powf)                 2 * sizeof(T) per element
//   x and y share shape and layout, so both are flat arrays of numel elements.
//
// Dtypes: f32, f16, bf16. Math in f32; f16/bf16 are only the storage type.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/elementwise.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

// The op is a kernel argument rather than a template parameter: the switch is
// uniform across threads, costs nothing next to the memory traffic, and keeps one
// kernel per dtype instead of four.
__device__ __forceinline__ float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return 0.0f;
}

template <class T>
__global__ void binary_same_shape_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) { out[i] = from_float<T>(apply(op, to_float(a[i]), to_float(b[i]))); }
}

// at.offsets(i) -> {offset in a, offset in b} for memory offset i of out.
template <class T>
__global__ void binary_broadcast_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n,
                                        OffsetCalculator<2> at) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    int64_t offsets[2];
    at.offsets(i, offsets);
    out[i] = from_float<T>(apply(op, to_float(a[offsets[0]]), to_float(b[offsets[1]])));
  }
}

template <class T>
__global__ void affine_scalar_kernel(const T* x, T* y, int64_t n, float alpha, float beta) {
  KILN_GRID_STRIDE_LOOP(i, n) { y[i] = from_float<T>(fmaf(alpha, to_float(x[i]), beta)); }
}

template <class T>
__global__ void pow_scalar_kernel(const T* x, T* y, int64_t n, float p) {
  KILN_GRID_STRIDE_LOOP(i, n) { y[i] = from_float<T>(powf(to_float(x[i]), p)); }
}

void check_unary(const char* op, const Tensor& x, const Tensor& y) {
  KILN_CHECK(x.shape() == y.shape() && x.layout() == y.layout() && x.dtype() == y.dtype(), op,
             ": x and y must match in shape, layout and dtype, got ", x.describe(), " and ", y.describe());
}

}  // namespace

void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const char* name = binary_op_name(op);
  const int64_t n = out.numel();
  if (n == 0) return;
  Context& ctx = context_for(out);
  set_device(ctx);
  const bool same_shape = a.shape() == out.shape() && b.shape() == out.shape() && a.layout() == out.layout() &&
                          b.layout() == out.layout();
  if (same_shape) {
    KILN_DISPATCH_CUDA_FLOAT(out.dtype(), name, {
      KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), binary_same_shape_kernel<scalar_t>)(
          op, static_cast<const scalar_t*>(a.raw_data()), static_cast<const scalar_t*>(b.raw_data()),
          static_cast<scalar_t*>(out.raw_data()), n);
      KILN_CHECK_LAUNCH(name);
    });
    return;
  }
  // Walk out's dims in its memory order; for each, the step in a and in b.
  const std::vector<int> order = memory_order(out);
  const std::vector<int64_t> a_strides = broadcast_strides(a, out.shape());
  const std::vector<int64_t> b_strides = broadcast_strides(b, out.shape());
  std::vector<int64_t> sizes(order.size());
  std::vector<int64_t> strides[2] = {std::vector<int64_t>(order.size()), std::vector<int64_t>(order.size())};
  for (size_t k = 0; k < order.size(); ++k) {
    sizes[k] = out.shape()[order[k]];
    strides[0][k] = a_strides[order[k]];
    strides[1][k] = b_strides[order[k]];
  }
  const OffsetCalculator<2> at = make_offset_calculator<2>(sizes, strides, name);
  KILN_DISPATCH_CUDA_FLOAT(out.dtype(), name, {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), binary_broadcast_kernel<scalar_t>)(
        op, static_cast<const scalar_t*>(a.raw_data()), static_cast<const scalar_t*>(b.raw_data()),
        static_cast<scalar_t*>(out.raw_data()), n, at);
    KILN_CHECK_LAUNCH(name);
  });
}

void affine_scalar_forward(const Tensor& x, const Tensor& y, double alpha, double beta) {
  check_unary("affine_scalar", x, y);
  const int64_t n = x.numel();
  if (n == 0) return;
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "affine_scalar", {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), affine_scalar_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), static_cast<scalar_t*>(y.raw_data()), n,
        static_cast<float>(alpha), static_cast<float>(beta));
    KILN_CHECK_LAUNCH("affine_scalar");
  });
}

void pow_scalar_forward(const Tensor& x, const Tensor& y, double p) {
  check_unary("pow_scalar", x, y);
  const int64_t n = x.numel();
  if (n == 0) return;
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), "pow_scalar", {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), pow_scalar_kernel<scalar_t>)(
        static_cast<const scalar_t*>(x.raw_data()), static_cast<scalar_t*>(y.raw_data()), n, static_cast<float>(p));
    KILN_CHECK_LAUNCH("pow_scalar");
  });
}

}  // namespace kiln::cuda
