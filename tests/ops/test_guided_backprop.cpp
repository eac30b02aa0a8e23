// The guided backward rule of relu and relu6 (GuidedBackpropGuard): exact values
// at both kinks, other activations untouched, the rule fixed when the op is
// recorded, and CPU-vs-CUDA agreement of the kernel's guided branch.
#include <doctest/doctest.h>

#include "engine/autograd/tape.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

// d sum(f(x) * w) / dx: the backward of f with grad_output = w.
std::vector<double> input_gradient(Tensor (*f)(const Tensor&), const std::vector<double>& x_values,
                                   const std::vector<double>& w, bool guided) {
  Tensor x = from_vector(x_values, {static_cast<int64_t>(x_values.size())}, {DType::f64});
  x.set_requires_grad(true);
  Tensor y;
  if (guided) {
    GuidedBackpropGuard guard;
    y = f(x);
  } else {
    y = f(x);
  }
  // Backward runs after the guard has ended: the rule was fixed in forward.
  y.backward(from_vector(w, y.shape(), {DType::f64}));
  return x.grad().to_vector();
}

Tensor relu_op(const Tensor& x) { return relu(x); }
Tensor relu6_op(const Tensor& x) { return relu6(x); }
Tensor tanh_op(const Tensor& x) { return kiln::tanh(x); }

}  // namespace

TEST_CASE("guided backprop: relu and relu6 pass only positive gradients where the input was active") {
  const std::vector<double> x = {-1.0, 0.0, 0.5, 3.0, 6.0, 7.0, 2.0, -2.0};
  const std::vector<double> w = {1.0, 1.0, -2.0, 3.0, 1.0, 1.0, -0.5, -1.0};
  CHECK(input_gradient(relu_op, x, w, false) == std::vector<double>{0, 0, -2, 3, 1, 1, -0.5, 0});
  CHECK(input_gradient(relu_op, x, w, true) == std::vector<double>{0, 0, 0, 3, 1, 1, 0, 0});
  CHECK(input_gradient(relu6_op, x, w, false) == std::vector<double>{0, 0, -2, 3, 0, 0, -0.5, 0});
  CHECK(input_gradient(relu6_op, x, w, true) == std::vector<double>{0, 0, 0, 3, 0, 0, 0, 0});
  // Other activations keep their derivative under the guard.
  CHECK(input_gradient(tanh_op, x, w, true) == input_gradient(tanh_op, x, w, false));
  CHECK_FALSE(guided_backprop_enabled());
  {
    GuidedBackpropGuard outer;
    {
      GuidedBackpropGuard inner;
    }
    CHECK(guided_backprop_enabled());  // nested guards restore the previous state
  }
  CHECK_FALSE(guided_backprop_enabled());
}

TEST_CASE("guided backprop: the CUDA kernel's guided rule matches the CPU" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("guided relu/relu6 backward on CUDA")) return;
  Rng rng(11);
  const Tensor saved = uniform({4, 3, 5, 7}, -2.0, 8.0, rng);
  const Tensor grad_output = uniform({4, 3, 5, 7}, -1.0, 1.0, rng);
  for (Activation a : {Activation::relu, Activation::relu6}) {
    const Tensor cpu = activation_backward(a, 0.0, saved, grad_output, GradientRule::guided);
    const Tensor gpu = activation_backward(a, 0.0, saved.to(Device::cuda(0)), grad_output.to(Device::cuda(0)),
                                           GradientRule::guided);
    CHECK(test::max_abs_diff(gpu.to(Device::cpu()).to_vector(), cpu.to_vector()) == 0.0);
  }
}
