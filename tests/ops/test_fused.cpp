// The fused ops batch_norm_act and add_relu against the unfused compositions they
// replace (docs/ops/fused.md): forward, every input gradient and the running
// statistics agree to ~1e-12 in float64, in both layouts, training and eval, with
// the exact and the guided gradient rule; plus their error messages, and the
// nn helpers' rule that a forward hook turns the fusion off.
// (Gradient checks and CPU-vs-CUDA parity come from the op table rows.)
#include <doctest/doctest.h>

#include <memory>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

struct BnRun {
  std::vector<double> y, grad_x, grad_weight, grad_bias, running_mean, running_var;
};

// y = act(batch_norm(x)) fused or as two ops, then backward with grad_output w
// (signs mixed, so that the guided rule has negative gradients to stop).
BnRun run_batch_norm_act(bool fused, Activation activation, bool training, Layout layout, bool guided) {
  Rng rng(5);
  const Shape shape{4, 3, 5, 6};
  Tensor x = uniform(shape, -3, 3, rng, {DType::f64}).to(layout);
  Tensor weight = uniform({3}, 1.5, 4.0, rng, {DType::f64});  // wide enough that relu6 clips at 6
  Tensor bias = uniform({3}, 0.5, 2.0, rng, {DType::f64});
  Tensor running_mean = uniform({3}, -0.5, 0.5, rng, {DType::f64});
  Tensor running_var = uniform({3}, 0.5, 2.0, rng, {DType::f64});
  const Tensor w = uniform(shape, -1, 1, rng, {DType::f64}).to(layout);
  for (Tensor* t : {&x, &weight, &bias}) t->set_requires_grad(true);
  BatchNormOptions options;
  options.training = training;
  Tensor y;
  {
    std::unique_ptr<GuidedBackpropGuard> guard = guided ? std::make_unique<GuidedBackpropGuard>() : nullptr;
    y = fused ? batch_norm_act(x, weight, bias, running_mean, running_var, options, activation)
              : activate(batch_norm(x, weight, bias, running_mean, running_var, options), activation);
  }
  CHECK(y.layout() == layout);
  y.backward(w);
  return {y.to_vector(),           x.grad().to_vector(),     weight.grad().to_vector(), bias.grad().to_vector(),
          running_mean.to_vector(), running_var.to_vector()};
}

void check_same(const BnRun& got, const BnRun& want) {
  CHECK(test::max_abs_diff(got.y, want.y) < 1e-12);
  CHECK(test::max_abs_diff(got.grad_x, want.grad_x) < 1e-12);
  CHECK(test::max_abs_diff(got.grad_weight, want.grad_weight) < 1e-12);
  CHECK(test::max_abs_diff(got.grad_bias, want.grad_bias) < 1e-12);
  CHECK(test::max_abs_diff(got.running_mean, want.running_mean) < 1e-12);
  CHECK(test::max_abs_diff(got.running_var, want.running_var) < 1e-12);
}

int count_if(const std::vector<double>& v, bool (*predicate)(double)) {
  int n = 0;
  for (double value : v) n += predicate(value) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("batch_norm_act equals batch_norm then the activation: values, gradients, running stats") {
  for (Activation activation : {Activation::relu, Activation::relu6})
    for (bool training : {true, false})
      for (Layout layout : {Layout::nchw, Layout::nhwc})
        for (bool guided : {false, true}) {
          CAPTURE(activation_name(activation));
          CAPTURE(training);
          CAPTURE(layout == Layout::nhwc);
          CAPTURE(guided);
          const BnRun want = run_batch_norm_act(false, activation, training, layout, guided);
          const BnRun got = run_batch_norm_act(true, activation, training, layout, guided);
          check_same(got, want);
          // The inputs reach every piece: zeros, the slope, and (relu6) the top clip.
          CHECK(count_if(got.y, [](double v) { return v == 0.0; }) > 0);
          CHECK(count_if(got.y, [](double v) { return v > 0.0 && v < 6.0; }) > 0);
          if (activation == Activation::relu6) CHECK(count_if(got.y, [](double v) { return v == 6.0; }) > 0);
        }
  // The guided rule changes the gradient (else the comparison above proves little).
  const BnRun exact = run_batch_norm_act(true, Activation::relu, true, Layout::nchw, false);
  const BnRun guided = run_batch_norm_act(true, Activation::relu, true, Layout::nchw, true);
  CHECK(test::max_abs_diff(exact.grad_x, guided.grad_x) > 1e-3);
}

TEST_CASE("batch_norm_act: errors name the op") {
  Rng rng(1);
  const Tensor x = uniform({2, 3, 4, 4}, -1, 1, rng, {DType::f64});
  const Tensor weight = uniform({3}, 0.5, 1.5, rng, {DType::f64});
  test::expect_error_containing(
      [&] { batch_norm_act(x, weight, Tensor(), Tensor(), Tensor(), BatchNormOptions{}, Activation::gelu); },
      {"batch_norm_act", "relu or relu6", "gelu"});
  test::expect_error_containing(
      [&] {
        batch_norm_act(x, uniform({4}, 0.5, 1.5, rng, {DType::f64}), Tensor(), Tensor(), Tensor(), BatchNormOptions{},
                       Activation::relu);
      },
      {"batch_norm_act", "weight", "(C) = (3)", "(4)"});
}

TEST_CASE("add_relu equals relu(add(a, b)), in mixed layouts and with the guided rule") {
  for (bool guided : {false, true})
    for (Layout b_layout : {Layout::nchw, Layout::nhwc}) {
      CAPTURE(guided);
      CAPTURE(b_layout == Layout::nhwc);
      std::vector<double> results[2][3];  // [fused][y, grad_a, grad_b]
      for (int fused = 0; fused < 2; ++fused) {
        Rng rng(9);
        Tensor a = uniform({2, 3, 4, 5}, -2, 2, rng, {DType::f64});
        Tensor b = uniform({2, 3, 4, 5}, -2, 2, rng, {DType::f64}).to(b_layout);
        const Tensor w = uniform({2, 3, 4, 5}, -1, 1, rng, {DType::f64});
        a.set_requires_grad(true);
        b.set_requires_grad(true);
        Tensor y;
        {
          std::unique_ptr<GuidedBackpropGuard> guard = guided ? std::make_unique<GuidedBackpropGuard>() : nullptr;
          y = fused ? add_relu(a, b) : relu(add(a, b));
        }
        CHECK(y.layout() == Layout::nchw);  // a's layout
        y.backward(w);
        results[fused][0] = y.to_vector();
        results[fused][1] = a.grad().to_vector();
        results[fused][2] = b.grad().to_vector();
        // Two leaves get two gradient tensors, never one shared buffer.
        CHECK_FALSE(a.grad().same_storage(b.grad()));
      }
      for (int k = 0; k < 3; ++k) CHECK(test::max_abs_diff(results[1][k], results[0][k]) < 1e-12);
    }
  Rng rng(2);
  const Tensor a = uniform({2, 3}, -1, 1, rng, {DType::f64});
  test::expect_error_containing([&] { add_relu(a, uniform({3, 2}, -1, 1, rng, {DType::f64})); },
                                {"add_relu", "(2, 3)", "(3, 2)"});
  test::expect_error_containing([&] { add_relu(a, a.to(DType::f32)); }, {"add_relu", "f32"});
}

TEST_CASE("batch_norm_then_activation fuses only while no forward hook would be skipped") {
  Rng rng(4);
  nn::BatchNorm bn(3);
  nn::ActivationLayer act(Activation::relu6);
  const Tensor x = uniform({2, 3, 4, 4}, -4, 4, rng, {DType::f32});
  bn.eval();
  const Tensor fused = nn::batch_norm_then_activation(bn, act, x);
  CHECK(fused.to_vector() == act.forward(bn.forward(x)).to_vector());
  int act_calls = 0;
  {
    // A hook that replaces the activation's output: it must run, and its output must win.
    auto handle = act.register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& y) {
      ++act_calls;
      return add_scalar(y, 1.0);
    });
    CHECK(act.has_forward_hooks());
    const Tensor hooked = nn::batch_norm_then_activation(bn, act, x);
    CHECK(act_calls == 1);
    CHECK(test::max_abs_diff(hooked.to_vector(), add_scalar(fused, 1.0).to_vector()) == 0.0);
  }
  CHECK_FALSE(act.has_forward_hooks());
  int bn_calls = 0;
  auto bn_handle = bn.register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) {
    ++bn_calls;
    return Tensor();
  });
  nn::batch_norm_then_activation(bn, act, x);
  CHECK(bn_calls == 1);
  // add_then_activation likewise: a hook on the activation sees add's output.
  Tensor seen;
  auto act_handle = act.register_forward_hook([&](nn::Module&, const Tensor& input, const Tensor&) {
    seen = input;
    return Tensor();
  });
  nn::ActivationLayer relu_layer(Activation::relu);
  auto relu_handle = relu_layer.register_forward_hook([&](nn::Module&, const Tensor& input, const Tensor&) {
    seen = input;
    return Tensor();
  });
  const Tensor summed = nn::add_then_activation(relu_layer, x, x);
  REQUIRE(seen.defined());
  CHECK(seen.to_vector() == add(x, x).to_vector());
  CHECK(summed.to_vector() == relu(add(x, x)).to_vector());
}
