// CPU references for the activations: one scalar function per direction, a switch
// over the activation, and a plain loop. Computed in T (float or double), written
// for clarity: the CUDA kernels and the finite-difference checks compare to this.
#include <algorithm>
#include <cmath>

#include "engine/ops/activation.h"

namespace kiln::cpu {

namespace {

template <class T> T sigmoid_of(T x) {
  // Two branches so that e^(-x) never overflows for very negative x.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// softplus(x) = log(1 + e^x); above 20 it equals x to double precision (torch uses
// the same threshold), and computing e^x there would overflow sooner or later.
template <class T> T softplus_of(T x) { return x > T(20) ? x : std::log1p(std::exp(x)); }

template <class T> T normal_cdf(T x) { return T(0.5) * (T(1) + std::erf(x / std::sqrt(T(2)))); }
template <class T> T normal_pdf(T x) { return std::exp(T(-0.5) * x * x) / std::sqrt(T(2) * T(M_PI)); }

template <class T> T forward_of(Activation a, T p, T x) {
  switch (a) {
    case Activation::relu: return x > 0 ? x : T(0);
    case Activation::leaky_relu: return x > 0 ? x : p * x;
    case Activation::elu: return x > 0 ? x : p * std::expm1(x);
    case Activation::gelu: return x * normal_cdf(x);
    case Activation::silu: return x * sigmoid_of(x);
    case Activation::mish: return x * std::tanh(softplus_of(x));
    case Activation::relu6: return std::min(std::max(x, T(0)), T(6));
    case Activation::hardswish: return x * std::min(std::max(x + T(3), T(0)), T(6)) / T(6);
    case Activation::sigmoid: return sigmoid_of(x);
    case Activation::tanh: return std::tanh(x);
  }
  return T(0);
}

// dy/dx, from the input x, or from the output y for sigmoid and tanh. At a kink the
// value of the right-hand piece is taken only where torch does the same (x > 0 for
// relu: derivative 0 at 0).
template <class T> T derivative_of(Activation a, T p, T s) {
  switch (a) {
    case Activation::relu: return s > 0 ? T(1) : T(0);
    case Activation::leaky_relu: return s > 0 ? T(1) : p;
    case Activation::elu: return s > 0 ? T(1) : p * std::exp(s);
    case Activation::gelu: return normal_cdf(s) + s * normal_pdf(s);  // Phi(x) + x phi(x)
    case Activation::silu: {
      const T sig = sigmoid_of(s);
      return sig * (T(1) + s * (T(1) - sig));  // sig + x sig (1 - sig)
    }
    case Activation::mish: {
      // d/dx [x tanh(sp(x))] = tanh(sp) + x (1 - tanh^2(sp)) sigmoid(x), since sp' = sigmoid
      const T t = std::tanh(softplus_of(s));
      return t + s * (T(1) - t * t) * sigmoid_of(s);
    }
    case Activation::relu6: return (s > 0 && s < T(6)) ? T(1) : T(0);
    case Activation::hardswish:
      if (s < T(-3)) return T(0);
      if (s <= T(3)) return (T(2) * s + T(3)) / T(6);
      return T(1);
    case Activation::sigmoid: return s * (T(1) - s);  // s is y
    case Activation::tanh: return T(1) - s * s;       // s is y
  }
  return T(0);
}

}  // namespace

template <class T> void activation_forward(Activation a, double parameter, const T* x, T* y, int64_t n) {
  const T p = static_cast<T>(parameter);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = forward_of(a, p, x[i]);
}

// exact:  grad_input = f'(x) * grad_output
// guided: grad_input = f'(x) * max(grad_output, 0)   (only negative gradients are stopped)
template <class T>
void activation_backward(Activation a, double parameter, GradientRule rule, const T* saved, const T* grad_output,
                         T* grad_input, int64_t n) {
  const T p = static_cast<T>(parameter);
  const bool guided = rule == GradientRule::guided;
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T g = guided ? std::max(grad_output[i], T(0)) : grad_output[i];
    grad_input[i] = derivative_of(a, p, saved[i]) * g;
  }
}

// y = relu(a + b): the sum lives in a register only.
template <class T> void add_relu_forward(const T* a, const T* b, T* y, int64_t n) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = forward_of(Activation::relu, T(0), a[i] + b[i]);
}

#define KILN_INSTANTIATE(T)                                                            \
  template void activation_forward<T>(Activation, double, const T*, T*, int64_t);     \
  template void activation_backward<T>(Activation, double, GradientRule, const T*, const T*, T*, int64_t); \
  template void add_relu_forward<T>(const T*, const T*, T*, int64_t);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
