// Activation kernels: y = f(x) and grad_input = f'(x) * grad_output, element-wise.
//
//   Shapes:  x, y, saved, grad_output, grad_input: any shape, n elements, one layout
//            (the host side makes grad_output match saved), walked in memory order.
//   Math:    docs/ops/activation.md; the CPU reference is engine/ops/cpu/activation_cpu.cpp.
//            relu, leaky_relu(slope), elu(alpha), gelu (erf form), silu, mish, relu6,
//            hardswish, sigmoid, tanh.
//   Saved:   y for sigmoid and tanh, x for the others (activation_saves_output).
//   Rules:   backward is f'(s) * g with g = grad_output (GradientRule::exact) or
//            g = max(grad_output, 0) (GradientRule::guided, guided backpropagation).
//   Dtypes:  f32, f16, bf16 in memory; the math is always in f32.
//   Memory:  forward reads x and writes y: 2 * sizeof(T) bytes per element;
//            backward reads saved and grad_output, writes grad_input: 3 * sizeof(T).
//            Both are bandwidth-bound: the transcendental math is hidden behind
//            the loads on an H100, so one generic grid-stride kernel is enough.
//   add_relu: y = relu(a + b) reads a and b and writes y: 3 * sizeof(T) bytes per
//            element, where add then relu move 5 (docs/ops/fused.md); its backward
//            is relu's activation_backward_kernel on the saved y.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/activation.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ float sigmoid_of(float x) {
  // Both branches stay finite: __expf of a large positive argument would be inf.
  if (x >= 0.f) return 1.f / (1.f + __expf(-x));
  const float e = __expf(x);
  return e / (1.f + e);
}

// Same threshold as the CPU reference and torch: above 20, log(1 + e^x) == x in f32.
__device__ __forceinline__ float softplus_of(float x) { return x > 20.f ? x : log1pf(__expf(x)); }

__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float normal_pdf(float x) { return 0.39894228040143268f * __expf(-0.5f * x * x); }

__device__ __forceinline__ float forward_of(Activation a, float p, float x) {
  switch (a) {
    case Activation::relu: return x > 0.f ? x : 0.f;
    case Activation::leaky_relu: return x > 0.f ? x : p * x;
    case Activation::elu: return x > 0.f ? x : p * expm1f(x);  // expm1f: accurate for small |x|
    case Activation::gelu: return x * normal_cdf(x);
    case Activation::silu: return x * sigmoid_of(x);
    case Activation::mish: return x * tanhf(softplus_of(x));
    case Activation::relu6: return fminf(fmaxf(x, 0.f), 6.f);
    case Activation::hardswish: return x * fminf(fmaxf(x + 3.f, 0.f), 6.f) * (1.f / 6.f);
    case Activation::sigmoid: return sigmoid_of(x);
    case Activation::tanh: return tanhf(x);
  }
  return 0.f;
}

// dy/dx from s = x, or s = y for sigmoid and tanh; the same pieces as the CPU reference.
__device__ __forceinline__ float derivative_of(Activation a, float p, float s) {
  switch (a) {
    case Activation::relu: return s > 0.f ? 1.f : 0.f;
    case Activation::leaky_relu: return s > 0.f ? 1.f : p;
    case Activation::elu: return s > 0.f ? 1.f : p * __expf(s);
    case Activation::gelu: return normal_cdf(s) + s * normal_pdf(s);
    case Activation::silu: {
      const float sig = sigmoid_of(s);
      return sig * (1.f + s * (1.f - sig));
    }
    case Activation::mish: {
      const float t = tanhf(softplus_of(s));
      return t + s * (1.f - t * t) * sigmoid_of(s);
    }
    case Activation::relu6: return (s > 0.f && s < 6.f) ? 1.f : 0.f;
    case Activation::hardswish: return s < -3.f ? 0.f : (s <= 3.f ? (2.f * s + 3.f) * (1.f / 6.f) : 1.f);
    case Activation::sigmoid: return s * (1.f - s);
    case Activation::tanh: return 1.f - s * s;
  }
  return 0.f;
}

// The activation is a kernel argument, not a template parameter: the switch is
// uniform across the grid, so it costs one predictable branch per element and
// keeps the file to two kernels instead of twenty.
template <class T>
__global__ void activation_forward_kernel(Activation a, float p, const T* __restrict__ x, T* __restrict__ y,
                                          int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) { y[i] = from_float<T>(forward_of(a, p, to_float(x[i]))); }
}

template <class T>
__global__ void activation_backward_kernel(Activation a, float p, GradientRule rule, const T* __restrict__ saved,
                                           const T* __restrict__ grad_output, T* __restrict__ grad_input,
                                           int64_t n) {
  const bool guided = rule == GradientRule::guided;  // uniform across the grid, like `a`
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float g = to_float(grad_output[i]);
    grad_input[i] = from_float<T>(derivative_of(a, p, to_float(saved[i])) * (guided ? fmaxf(g, 0.f) : g));
  }
}

template <class T>
__global__ void add_relu_forward_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y,
                                        int64_t n) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float sum = to_float(a[i]) + to_float(b[i]);
    y[i] = from_float<T>(sum > 0.f ? sum : 0.f);
  }
}

}  // namespace

void add_relu_forward(const Tensor& a, const Tensor& b, const Tensor& y) {
  KILN_CHECK(a.dtype() == b.dtype() && a.dtype() == y.dtype() && a.layout() == b.layout() &&
                 a.layout() == y.layout() && a.numel() == b.numel() && a.numel() == y.numel(),
             "add_relu: a, b and y must match, got ", a.describe(), ", ", b.describe(), " and ", y.describe());
  const int64_t n = a.numel();
  if (n == 0) return;
  Context& ctx = context_for(a);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(a.dtype(), "add_relu", {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), add_relu_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(a.raw_data()), static_cast<const scalar_t*>(b.raw_data()),
        static_cast<scalar_t*>(y.raw_data()), n);
  });
  KILN_CHECK_LAUNCH("add_relu");
}

void activation_forward(Activation a, double parameter, const Tensor& x, const Tensor& y) {
  KILN_CHECK(x.dtype() == y.dtype() && x.layout() == y.layout() && x.numel() == y.numel(),
             activation_name(a), ": x and y must match, got ", x.describe(), " and ", y.describe());
  const int64_t n = x.numel();
  if (n == 0) return;
  Context& ctx = context_for(x);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(x.dtype(), activation_name(a), {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), activation_forward_kernel<scalar_t>)(
        a, static_cast<float>(parameter), static_cast<const scalar_t*>(x.raw_data()),
        static_cast<scalar_t*>(y.raw_data()), n);
  });
  KILN_CHECK_LAUNCH(activation_name(a));
}

void activation_backward(Activation a, double parameter, GradientRule rule, const Tensor& saved,
                         const Tensor& grad_output, const Tensor& grad_input) {
  KILN_CHECK(saved.dtype() == grad_output.dtype() && saved.layout() == grad_output.layout() &&
                 saved.numel() == grad_output.numel() && saved.numel() == grad_input.numel(),
             activation_name(a), "_backward: saved, grad_output and grad_input must match, got ", saved.describe(),
             ", ", grad_output.describe(), " and ", grad_input.describe());
  const int64_t n = saved.numel();
  if (n == 0) return;
  Context& ctx = context_for(saved);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(saved.dtype(), activation_name(a), {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), activation_backward_kernel<scalar_t>)(
        a, static_cast<float>(parameter), rule, static_cast<const scalar_t*>(saved.raw_data()),
        static_cast<const scalar_t*>(grad_output.raw_data()), static_cast<scalar_t*>(grad_input.raw_data()), n);
  });
  KILN_CHECK_LAUNCH(activation_name(a));
}

}  // namespace kiln::cuda
