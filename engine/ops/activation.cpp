// Activations: one forward and one backward for the whole family, selected by the
// Activation enum, so that each activation is one case in the CPU loop and one in
// the CUDA kernel (engine/ops/cpu/activation_cpu.cpp, kernels/activation.cu).
#include "engine/ops/activation.h"

#include "engine/autograd/tape.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln {

namespace {

struct ActivationInfo {
  Activation activation;
  const char* name;
};
// The registry of names: parse_activation and activation_name both read it.
constexpr ActivationInfo kActivations[] = {
    {Activation::relu, "relu"},   {Activation::leaky_relu, "leaky_relu"}, {Activation::elu, "elu"},
    {Activation::gelu, "gelu"},   {Activation::silu, "silu"},             {Activation::mish, "mish"},
    {Activation::relu6, "relu6"}, {Activation::hardswish, "hardswish"},   {Activation::sigmoid, "sigmoid"},
    {Activation::tanh, "tanh"},
};
static_assert(sizeof(kActivations) / sizeof(kActivations[0]) == kActivationCount,
              "every Activation needs a name in kActivations");

// y = f(x) with its tape node. The public ops below are one line each.
Tensor activation_op(Activation a, double parameter, const Tensor& x) {
  const char* name = activation_name(a);
  check_defined(name, "x", x);
  check_dtype_supported(name, x);
  Tensor y = empty_like(x);  // same layout: the loop runs over memory order
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), name, [&](auto tag) {
          using T = decltype(tag);
          cpu::activation_forward<T>(a, parameter, x.data<T>(), y.data<T>(), x.numel());
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::activation_forward(a, parameter, x, y)); });
  if (needs_grad(x)) {
    // Saving y.detach() (not y) keeps the node from owning the tensor that owns it.
    const Tensor saved = activation_saves_output(a) ? y.detach() : x.detach();
    // The rule is fixed now, at recording time, so backward does not depend on when it runs.
    const GradientRule rule =
        guided_backprop_enabled() && has_guided_rule(a) ? GradientRule::guided : GradientRule::exact;
    record(y, name, {x}, [a, parameter, saved, rule](const Tensor& grad_output, const std::vector<bool>&) {
      return std::vector<Tensor>{activation_backward(a, parameter, saved, grad_output, rule)};
    });
  }
  return y;
}

}  // namespace

Tensor activation_backward(Activation a, double parameter, const Tensor& saved, const Tensor& grad_output,
                           GradientRule rule) {
  const char* name = activation_name(a);
  KILN_CHECK(grad_output.shape() == saved.shape(), name, "_backward: grad_output has shape ", grad_output.shape(),
             ", expected ", saved.shape());
  // The loops pair elements by memory position, so both must share one layout and dtype.
  const Tensor g = grad_output.to(saved.layout()).to(saved.dtype());
  Tensor grad_input = empty_like(saved);
  on_device(
      saved.device(),
      [&] {
        cpu_floating(saved.dtype(), name, [&](auto tag) {
          using T = decltype(tag);
          cpu::activation_backward<T>(a, parameter, rule, saved.data<T>(), g.data<T>(), grad_input.data<T>(),
                                      saved.numel());
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::activation_backward(a, parameter, rule, saved, g, grad_input)); });
  return grad_input;
}

bool activation_saves_output(Activation a) { return a == Activation::sigmoid || a == Activation::tanh; }

bool has_guided_rule(Activation a) { return a == Activation::relu || a == Activation::relu6; }

const char* activation_name(Activation a) {
  for (const ActivationInfo& info : kActivations)
    if (info.activation == a) return info.name;
  KILN_FAIL("activation_name: unknown Activation value ", static_cast<int>(a));
}

Activation parse_activation(const std::string& name) {
  std::string valid;
  for (const ActivationInfo& info : kActivations) {
    if (name == info.name) return info.activation;
    valid += std::string(valid.empty() ? "" : ", ") + info.name;
  }
  KILN_FAIL("unknown activation '", name, "'; valid names: ", valid);
}

Tensor activate(const Tensor& x, Activation a) {
  switch (a) {
    case Activation::leaky_relu: return leaky_relu(x);
    case Activation::elu: return elu(x);
    default: return activation_op(a, 0.0, x);  // the others take no parameter
  }
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  const char* op = "add_relu";
  check_defined(op, "a", a);
  check_defined(op, "b", b);
  check_dtype_supported(op, a);
  check_same_dtype(op, {a, b});
  check_same_device(op, {a, b});
  KILN_CHECK(a.shape() == b.shape(), "add_relu: a and b must have one shape (no broadcasting), got a ", a.shape(),
             " and b ", b.shape());
  // The loop pairs elements by memory position: b must be laid out like a.
  const Tensor b_like_a = b.layout() == a.layout() ? b : b.to(a.layout());
  Tensor y = empty_like(a);
  on_device(
      a.device(),
      [&] {
        cpu_floating(a.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::add_relu_forward<T>(a.data<T>(), b_like_a.data<T>(), y.data<T>(), a.numel());
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::add_relu_forward(a, b_like_a, y)); });
  if (any_needs_grad({a, b_like_a})) {
    const Tensor y_saved = y.detach();  // relu'(a + b) = [y > 0]
    const GradientRule rule = guided_backprop_enabled() ? GradientRule::guided : GradientRule::exact;
    // Two leaves must not share one gradient tensor (an optimizer may scale one in
    // place); anything else may, since the tape sums non-leaf gradients out of place.
    const bool both_leaves = a.is_leaf() && b_like_a.is_leaf();
    record(y, op, {a, b_like_a},
           [y_saved, rule, both_leaves](const Tensor& grad_output, const std::vector<bool>& mask) {
             const Tensor grad = activation_backward(Activation::relu, 0.0, y_saved, grad_output, rule);
             const Tensor grad_b = mask[0] && mask[1] && both_leaves ? grad.clone() : grad;
             return std::vector<Tensor>{mask[0] ? grad : Tensor(), mask[1] ? grad_b : Tensor()};
           });
  }
  return y;
}

Tensor relu(const Tensor& x) { return activation_op(Activation::relu, 0.0, x); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return activation_op(Activation::leaky_relu, negative_slope, x);
}
Tensor elu(const Tensor& x, double alpha) { return activation_op(Activation::elu, alpha, x); }
Tensor gelu(const Tensor& x) { return activation_op(Activation::gelu, 0.0, x); }
Tensor silu(const Tensor& x) { return activation_op(Activation::silu, 0.0, x); }
Tensor mish(const Tensor& x) { return activation_op(Activation::mish, 0.0, x); }
Tensor relu6(const Tensor& x) { return activation_op(Activation::relu6, 0.0, x); }
Tensor hardswish(const Tensor& x) { return activation_op(Activation::hardswish, 0.0, x); }
Tensor sigmoid(const Tensor& x) { return activation_op(Activation::sigmoid, 0.0, x); }
Tensor tanh(const Tensor& x) { return activation_op(Activation::tanh, 0.0, x); }

}  // namespace kiln
