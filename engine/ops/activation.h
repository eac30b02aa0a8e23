// Point-wise activations: y = f(x), element by element, any shape, any layout.
// The math (forward, derivative, kinks, what is saved) is in docs/ops/activation.md.
//
//   relu        max(x, 0)                           kink at 0
//   leaky_relu  x > 0 ? x : slope * x               kink at 0
//   elu         x > 0 ? x : alpha * (e^x - 1)       kink at 0 (unless alpha = 1)
//   gelu        x * Phi(x), Phi the normal CDF (exact erf form, torch's default)
//   silu        x * sigmoid(x)
//   mish        x * tanh(softplus(x))
//   relu6       min(max(x, 0), 6)                   kinks at 0 and 6
//   hardswish   x * relu6(x + 3) / 6                kinks at -3 and 3
//   sigmoid     1 / (1 + e^-x)
//   tanh        tanh(x)
//
// Saved for backward: the output y for sigmoid and tanh (their derivatives are
// y(1 - y) and 1 - y^2), the input x for every other activation.
//
// Backward rules (GradientRule): `exact` is the derivative; `guided` is guided
// backpropagation's rule f'(x) * max(grad_output, 0), recorded for relu and relu6
// (and for add_relu and batch_norm_act) while a GuidedBackpropGuard is alive
// (engine/autograd/grad_mode.h).
//
// add_relu(a, b) = relu(a + b) in one pass (a residual block's last step; the fused
// math and the bytes it saves are in docs/ops/fused.md). Saves y only: relu'(a + b)
// = [y > 0], so backward is relu's backward read off y, and da = db = that.
#pragma once
#include <string>

#include "engine/tensor/tensor.h"

namespace kiln {

Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor gelu(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor mish(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor hardswish(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
// relu(a + b): a and b of one shape and dtype; y has a's layout (b is converted if
// its layout differs). One pass: reads a and b, writes y; no a + b tensor exists.
Tensor add_relu(const Tensor& a, const Tensor& b);

enum class Activation { relu, leaky_relu, elu, gelu, silu, mish, relu6, hardswish, sigmoid, tanh };
constexpr int kActivationCount = 10;  // keep in step with Activation (activation.cpp static_asserts it)

Activation parse_activation(const std::string& name);  // "gelu" -> Activation::gelu; unknown lists the valid names
const char* activation_name(Activation a);
// Applies `a` with its default parameter (slope 0.01, alpha 1.0): what models/nn call.
Tensor activate(const Tensor& x, Activation a);

// True for sigmoid and tanh, whose backward reads the saved output instead of the input.
bool activation_saves_output(Activation a);

enum class GradientRule {
  exact,   // grad_input = f'(x) * grad_output
  guided,  // grad_input = f'(x) * max(grad_output, 0)   (guided backpropagation)
};
// True for relu and relu6: the activations whose backward GuidedBackpropGuard makes guided.
bool has_guided_rule(Activation a);

// grad_input = f'(x) * grad_output (or the guided rule). `saved` is x, or y where
// activation_saves_output(a). `parameter` is the slope of leaky_relu or the alpha of
// elu (ignored otherwise). Returns a new tensor shaped and laid out like `saved`
// (the tape accumulates it).
Tensor activation_backward(Activation a, double parameter, const Tensor& saved, const Tensor& grad_output,
                           GradientRule rule = GradientRule::exact);

// Backend functions. All arrays hold n elements in the same memory order.
namespace cpu {
template <class T> void activation_forward(Activation a, double parameter, const T* x, T* y, int64_t n);
template <class T>
void activation_backward(Activation a, double parameter, GradientRule rule, const T* saved, const T* grad_output,
                         T* grad_input, int64_t n);
template <class T> void add_relu_forward(const T* a, const T* b, T* y, int64_t n);
}  // namespace cpu
namespace cuda {
void activation_forward(Activation a, double parameter, const Tensor& x, const Tensor& y);
void activation_backward(Activation a, double parameter, GradientRule rule, const Tensor& saved,
                         const Tensor& grad_output, const Tensor& grad_input);
void add_relu_forward(const Tensor& a, const Tensor& b, const Tensor& y);
}  // namespace cuda

}  // namespace kiln
