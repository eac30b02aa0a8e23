// Activations and dropout where the op table cannot reach: exact values at known
// points (the kinks included, where torch picks a side), name parsing, and the
// dropout mask's properties. Expected values are closed forms, written next to them
// (evaluated with Python's math module; torch was not installed when these were written).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd/tape.h"
#include "engine/ops/activation.h"
#include "engine/ops/dropout.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

// f(x) for one scalar, in f64.
double value_at(Tensor (*op)(const Tensor&), double x) { return op(scalar(x, {DType::f64})).item(); }

// df/dx at one scalar, through backward.
double derivative_at(Tensor (*op)(const Tensor&), double x) {
  Tensor input = scalar(x, {DType::f64});
  input.set_requires_grad(true);
  op(input).backward();
  return input.grad().item();
}

}  // namespace

TEST_CASE("activations: values at known points") {
  // gelu(x) = x * Phi(x); Phi(1) = 0.5 * (1 + erf(1 / sqrt(2)))
  CHECK(value_at(gelu, 1.0) == doctest::Approx(0.8413447460685429).epsilon(1e-14));
  CHECK(value_at(gelu, -1.0) == doctest::Approx(-0.15865525393145707).epsilon(1e-14));
  // hardswish(x) = x * clamp(x + 3, 0, 6) / 6
  CHECK(value_at(hardswish, -3.0) == 0.0);
  CHECK(value_at(hardswish, 0.0) == 0.0);
  CHECK(value_at(hardswish, 3.0) == 3.0);
  CHECK(value_at(hardswish, 1.0) == doctest::Approx(4.0 / 6.0));
  CHECK(value_at(relu6, 6.0) == 6.0);
  CHECK(value_at(relu6, 7.5) == 6.0);
  CHECK(value_at(relu6, -1.0) == 0.0);
  CHECK(value_at(relu, -2.0) == 0.0);
  CHECK(value_at(silu, 1.0) == doctest::Approx(0.7310585786300049));            // 1 / (1 + e^-1)
  CHECK(value_at(mish, 1.0) == doctest::Approx(0.8650983882673103));            // tanh(log(1 + e))
  CHECK(elu(scalar(-1.0, {DType::f64})).item() == doctest::Approx(-0.6321205588285577));  // e^-1 - 1
  CHECK(value_at(sigmoid, 0.0) == 0.5);
  CHECK(value_at(kiln::tanh, 0.5) == doctest::Approx(0.46211715726000974));
  CHECK(leaky_relu(scalar(-2.0, {DType::f64}), 0.2).item() == doctest::Approx(-0.4));
  CHECK(elu(scalar(-1.0, {DType::f64}), 0.5).item() == doctest::Approx(0.5 * -0.6321205588285577));
  // Large inputs stay finite (the stable sigmoid and softplus branches).
  CHECK(value_at(sigmoid, -800.0) == 0.0);
  CHECK(value_at(mish, 800.0) == 800.0);
}

TEST_CASE("activations: derivatives at kinks follow torch") {
  // gelu'(x) = Phi(x) + x phi(x); at 1: 0.8413447460685429 + 0.24197072451914337
  CHECK(derivative_at(gelu, 1.0) == doctest::Approx(1.0833154705876864).epsilon(1e-14));
  CHECK(derivative_at(relu, 0.0) == 0.0);  // torch: relu'(0) = 0
  CHECK(derivative_at(relu6, 6.0) == 0.0);  // torch: 0 at both ends of (0, 6)
  CHECK(derivative_at(relu6, 0.0) == 0.0);
  // torch's hardswish_backward: x < -3 -> 0, x <= 3 -> x/3 + 1/2, else 1. So at
  // exactly -3 it takes the middle piece (-1/2) and at 3 too (3/2).
  CHECK(derivative_at(hardswish, 0.0) == 0.5);
  CHECK(derivative_at(hardswish, -3.0) == -0.5);
  CHECK(derivative_at(hardswish, 3.0) == 1.5);
  CHECK(derivative_at(hardswish, -3.5) == 0.0);
  CHECK(derivative_at(sigmoid, 0.0) == 0.25);   // y (1 - y) with y = 1/2
  CHECK(derivative_at(kiln::tanh, 0.0) == 1.0);  // 1 - y^2 with y = 0
}

TEST_CASE("activations: names parse, print and dispatch") {
  for (int i = 0; i < kActivationCount; ++i) {
    const Activation a = static_cast<Activation>(i);
    CHECK(parse_activation(activation_name(a)) == a);
  }
  test::expect_error_containing([] { parse_activation("swish"); }, {"swish", "relu", "gelu", "hardswish", "tanh"});
  const Tensor x = from_vector({-2.0, -0.5, 0.5, 2.0}, {4}, {DType::f64});
  CHECK(activate(x, Activation::leaky_relu).to_vector() == leaky_relu(x).to_vector());
  CHECK(activate(x, Activation::gelu).to_vector() == gelu(x).to_vector());
}

TEST_CASE("activations: an nhwc input gives an nhwc output") {
  Rng rng(5);
  const Tensor x = uniform({2, 3, 4, 5}, -4, 4, rng, {DType::f32, Device::cpu(), Layout::nhwc});
  const Tensor y = hardswish(x);
  CHECK(y.layout() == Layout::nhwc);
  CHECK(y.to_vector() == hardswish(x.contiguous()).to_vector());
}

TEST_CASE("dropout: identity when not training or p = 0") {
  Rng rng(1);
  const Tensor x = uniform({4, 8}, -1, 1, rng, {DType::f64});
  CHECK(dropout(x, 0.5, false, 7).to_vector() == x.to_vector());
  CHECK(dropout(x, 0.0, true, 7).to_vector() == x.to_vector());
  CHECK(dropout(x, 1.0, true, 7).to_vector() == std::vector<double>(32, 0.0));
  test::expect_error_containing([&] { dropout(x, 1.5, true, 7); }, {"dropout", "p must be in [0, 1]", "1.5"});
}

TEST_CASE("dropout: the mask is uniform01(seed, i) >= p, scaled by 1 / (1 - p)") {
  const double p = 0.3;
  const uint64_t seed = 99;
  const Tensor x = ones({10000}, {DType::f64});
  const std::vector<double> y = dropout(x, p, true, seed).to_vector();
  int64_t kept = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const bool keep = uniform01(seed, i) >= static_cast<float>(p);
    CHECK(y[i] == (keep ? 1.0 / (1.0 - p) : 0.0));
    kept += keep;
  }
  // 10000 Bernoulli(0.7) draws: the standard deviation of the count is ~46.
  CHECK(std::abs(static_cast<double>(kept) - 7000.0) < 250.0);
  // Another seed gives another mask.
  CHECK(dropout(x, p, true, seed + 1).to_vector() != y);
}

TEST_CASE("dropout: the mask follows logical indices, so nhwc drops the same elements") {
  Rng rng(2);
  const Tensor x = uniform({2, 3, 4, 5}, -1, 1, rng, {DType::f64});
  const Tensor y_nchw = dropout(x, 0.5, true, 3);
  const Tensor y_nhwc = dropout(x.to(Layout::nhwc), 0.5, true, 3);
  CHECK(y_nhwc.layout() == Layout::nhwc);
  CHECK(y_nhwc.to_vector() == y_nchw.to_vector());
}

TEST_CASE("dropout: backward applies the forward's mask to grad_output") {
  Rng rng(4);
  Tensor x = uniform({6, 7}, -1, 1, rng, {DType::f64});
  x.set_requires_grad(true);
  sum(dropout(x, 0.4, true, 11)).backward();
  // d sum(y) / dx_i = keep_i / (1 - p) = y_i / x_i.
  const std::vector<double> grad = x.grad().to_vector(), y = dropout(x.detach(), 0.4, true, 11).to_vector(),
                            values = x.detach().to_vector();
  for (size_t i = 0; i < grad.size(); ++i) CHECK(grad[i] == doctest::Approx(y[i] / values[i]));
}
