#include <doctest/doctest.h>

#include "engine/autograd/tape.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("autograd: branches and residual adds sum their gradients") {
  Tensor x = from_vector({1.5, -2.0, 3.0}, {3}, {DType::f64}).set_requires_grad(true);
  // y = x * x + x  (x is used three times): dy/dx = 2x + 1
  Tensor y = sum(add(mul(x, x), x));
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{4.0, -3.0, 7.0});
}

TEST_CASE("autograd: leaf gradients accumulate across backward calls until zero_grad") {
  Tensor w = from_vector({2.0}, {1}, {DType::f64}).set_requires_grad(true);
  sum(mul_scalar(w, 3.0)).backward();
  sum(mul_scalar(w, 3.0)).backward();
  CHECK(w.grad().item() == 6.0);
  w.zero_grad();
  CHECK(!w.grad().defined());
}

TEST_CASE("autograd: no node is recorded without grad or under NoGradGuard") {
  Tensor frozen = from_vector({1.0, 2.0}, {2});  // requires_grad = false
  Tensor y = mul(frozen, frozen);
  CHECK(!y.requires_grad());
  CHECK(!y.grad_fn());
  Tensor w = from_vector({1.0, 2.0}, {2}).set_requires_grad(true);
  {
    NoGradGuard no_grad;
    CHECK(!mul(w, w).grad_fn());
  }
  CHECK(mul(w, w).grad_fn());
}

TEST_CASE("autograd: a frozen input gets no gradient and costs no backward work") {
  Tensor data = from_vector({1.0, 2.0}, {2}, {DType::f64});
  Tensor w = from_vector({3.0, 4.0}, {2}, {DType::f64}).set_requires_grad(true);
  Tensor y = mul(data, w);
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->inputs[0] == nullptr);  // the mask says: no gradient for the data
  sum(y).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{1.0, 2.0});
  CHECK(!data.grad().defined());
}

TEST_CASE("autograd: saved tensors are freed after backward, and a second backward is an error") {
  Tensor w = from_vector({3.0}, {1}).set_requires_grad(true);
  Tensor big = mul(w, ones({1000}));
  Tensor loss = sum(mul(big, big));
  const std::weak_ptr<Storage> saved = big.storage();
  big = Tensor();  // only the graph holds `big` now
  CHECK(!saved.expired());
  loss.backward();
  CHECK(saved.expired());  // freed as soon as backward used it
  test::expect_error_containing([&] { loss.backward(); }, {"second time"});
}

TEST_CASE("autograd: backward needs a scalar or an explicit gradient") {
  Tensor w = from_vector({1.0, 2.0}, {2}).set_requires_grad(true);
  Tensor y = mul_scalar(w, 2.0);
  test::expect_error_containing([&] { y.backward(); }, {"backward", "(2,)"});
  y.backward(from_vector({1.0, 0.5}, {2}));
  CHECK(w.grad().to_vector() == std::vector<double>{2.0, 1.0});
}

TEST_CASE("autograd: conversions are differentiable") {
  Tensor w = from_vector({1.0, 2.0, 3.0, 4.0}, {1, 4, 1, 1}, {DType::f64}).set_requires_grad(true);
  Tensor y = w.to(DType::f32).to(Layout::nhwc);
  sum(mul(y, y)).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{2.0, 4.0, 6.0, 8.0});
  CHECK(w.grad().dtype() == DType::f64);
}
