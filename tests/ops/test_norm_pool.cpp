// Special cases of batch_norm and pooling that the op table cannot reach: exact
// numbers worked out by hand, PyTorch's window and ceil_mode rules, tie-breaking,
// and the error messages. (Gradients, layouts and CPU-vs-CUDA parity come from the
// op-table rows in engine/ops/op_table_norm_pool.cpp.)
//
// The expected numbers below are PyTorch's by construction (same formulas); the
// torch expression that reproduces each is given next to it.
#include <doctest/doctest.h>

#include "engine/autograd/tape.h"
#include "engine/ops/norm.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {
void check_values(const Tensor& t, const std::vector<double>& want, double tolerance = 1e-6) {
  const std::vector<double> got = t.to_vector();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(tolerance));
  }
}
}  // namespace

TEST_CASE("batch_norm: one training step normalises with the batch and updates running stats (unbiased var)") {
  // One channel holding 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14,
  // biased var 14/4 = 3.5 (normalisation), unbiased var 14/3 (running_var).
  //   torch: x = torch.tensor([[1.], [2.], [3.], [6.]]); rm = torch.zeros(1); rv = torch.ones(1)
  //          F.batch_norm(x, rm, rv, training=True, momentum=0.1, eps=1e-5)
  //          -> y[3] = 3 / sqrt(3.5 + 1e-5) = 1.6035652, rm = 0.3, rv = 0.9 + 0.1 * 14/3 = 1.3666667
  const Tensor x = from_vector({1, 2, 3, 6}, {4, 1});
  const Tensor running_mean = zeros({1});
  const Tensor running_var = ones({1});
  const Tensor y = batch_norm(x, Tensor(), Tensor(), running_mean, running_var, BatchNormOptions{});
  check_values(y, {-1.0690434404458735, -0.5345217202229368, 0.0, 1.6035651606688102});
  check_values(running_mean, {0.3});
  check_values(running_var, {1.3666666666666667});

  SUBCASE("the same numbers from a 4-D channels-last input") {
    // (N, C, H, W) = (2, 1, 1, 2) holds the same four values in channel 0.
    const Tensor x4 = from_vector({1, 2, 3, 6}, {2, 1, 1, 2}, {DType::f32, Device::cpu(), Layout::nhwc});
    const Tensor rm = zeros({1}), rv = ones({1});
    const Tensor y4 = batch_norm(x4, Tensor(), Tensor(), rm, rv, BatchNormOptions{});
    CHECK(y4.layout() == Layout::nhwc);
    check_values(y4, {-1.0690434404458735, -0.5345217202229368, 0.0, 1.6035651606688102});
    check_values(rm, {0.3});
    check_values(rv, {1.3666666666666667});
  }
}

TEST_CASE("batch_norm: eval mode normalises with the running stats and leaves them alone") {
  //   torch: F.batch_norm(torch.tensor([[3., 0.], [-1., -1.5]]), torch.tensor([1., -1.]),
  //                       torch.tensor([4., .25]), torch.tensor([2., 1.]), torch.tensor([.5, 0.]),
  //                       training=False)  -> [[2.4999975, 1.99996], [-1.4999975, -0.99998]]
  const Tensor x = from_vector({3, 0, -1, -1.5}, {2, 2});
  const Tensor running_mean = from_vector({1, -1}, {2});
  const Tensor running_var = from_vector({4, 0.25}, {2});
  const Tensor weight = from_vector({2, 1}, {2});
  const Tensor bias = from_vector({0.5, 0}, {2});
  BatchNormOptions eval;
  eval.training = false;
  const Tensor y = batch_norm(x, weight, bias, running_mean, running_var, eval);
  check_values(y, {2.4999975000046875, 1.9999600011999599, -1.4999975000046875, -0.9999800005999799});
  check_values(running_mean, {1, -1});
  check_values(running_var, {4, 0.25});
}

TEST_CASE("batch_norm: eval backward is the plain scale weight * invstd, and weight and bias get their sums") {
  const Tensor x = from_vector({3, 0, -1, -1.5}, {2, 2});
  const Tensor weight = from_vector({2, 1}, {2}).set_requires_grad(true);
  const Tensor bias = from_vector({0.5, 0}, {2}).set_requires_grad(true);
  Tensor x_leaf = x.clone().set_requires_grad(true);
  BatchNormOptions eval;
  eval.training = false;
  sum(batch_norm(x_leaf, weight, bias, from_vector({1, -1}, {2}), from_vector({4, 0.25}, {2}), eval)).backward();
  // grad_x = weight / sqrt(running_var + eps): 2/2 and 1/0.5 (up to eps).
  check_values(x_leaf.grad(), {1 / std::sqrt(1 + 0.25e-5), 2 / std::sqrt(1 + 4e-5), 1 / std::sqrt(1 + 0.25e-5),
                               2 / std::sqrt(1 + 4e-5)});
  check_values(bias.grad(), {2, 2});  // sum of dy = 1 over two rows
  // grad_weight = sum xhat: channel 0 (3-1)/2 + (-1-1)/2 = 0; channel 1 (0+1)/0.5 + (-1.5+1)/0.5 = 1.
  check_values(weight.grad(), {0.0, 0.99998}, 1e-4);
}

TEST_CASE("max_pool2d: ties route the gradient to the first maximum (row-major in the window)") {
  //   torch: x = torch.tensor([[[[1., 3.], [3., 2.]]]], requires_grad=True)
  //          F.max_pool2d(x, 2).backward(); x.grad -> [[0, 1], [0, 0]]
  Tensor x = from_vector({1, 3, 3, 2}, {1, 1, 2, 2}).set_requires_grad(true);
  Tensor y = max_pool2d(x, Pool2dParams{});
  check_values(y, {3});
  sum(y).backward();
  check_values(x.grad(), {0, 1, 0, 0});

  Tensor flat = full({1, 1, 2, 2}, 5.0).set_requires_grad(true);
  sum(max_pool2d(flat, Pool2dParams{})).backward();
  check_values(flat.grad(), {1, 0, 0, 0});
}

TEST_CASE("max_pool2d: padding reads as -inf, so negative inputs are not beaten by the padding") {
  //   torch: F.max_pool2d(-torch.ones(1, 1, 2, 2), 3, 1, 1) -> all -1 (zero padding would give 0)
  Pool2dParams p;
  p.kernel = {3, 3};
  p.stride = {1, 1};
  p.padding = {1, 1};
  check_values(max_pool2d(full({1, 1, 2, 2}, -1.0), p), {-1, -1, -1, -1});
}

TEST_CASE("adaptive_avg_pool2d: 7 -> 3 uses the windows 0-3, 2-5 and 4-7 (end exclusive)") {
  // start = floor(i * 7 / 3) = 0, 2, 4;  end = ceil((i + 1) * 7 / 3) = 3, 5, 7.
  //   torch: x = (torch.arange(7.) ** 2).view(1, 1, 7, 1); F.adaptive_avg_pool2d(x, (3, 1))
  //          -> [5/3, 29/3, 77/3]
  Tensor x = from_vector({0, 1, 4, 9, 16, 25, 36}, {1, 1, 7, 1}).set_requires_grad(true);
  Tensor y = adaptive_avg_pool2d(x, 3, 1);
  check_values(y, {5.0 / 3, 29.0 / 3, 77.0 / 3});
  sum(y).backward();
  // Rows 2 and 4 sit in two windows, so they get 2/3; the others 1/3.
  check_values(x.grad(), {1.0 / 3, 1.0 / 3, 2.0 / 3, 1.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3});
}

TEST_CASE("global_avg_pool2d: the mean over H x W, shape (N, C, 1, 1)") {
  const Tensor x = from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2}, {DType::f64, Device::cpu(), Layout::nhwc});
  const Tensor y = global_avg_pool2d(x);
  CHECK(y.shape() == Shape{1, 2, 1, 1});
  check_values(y, {2.5, 25});
}

TEST_CASE("pool output size: floor vs ceil_mode, and the last window must start inside input or left padding") {
  CHECK(pool_output_size(6, 3, 2, 0, false, "t") == 2);
  CHECK(pool_output_size(6, 3, 2, 0, true, "t") == 3);   // torch: F.max_pool2d(torch.zeros(1,1,6,6), 3, 2, ceil_mode=True) -> 3x3
  CHECK(pool_output_size(6, 3, 2, 1, true, "t") == 4);   // window 3 starts at 5 < 6 + 1: kept
  CHECK(pool_output_size(5, 2, 2, 1, true, "t") == 3);   // ceil gives 4, but window 3 starts at 6 >= 5 + 1: dropped
  CHECK(pool_output_size(112, 3, 2, 1, false, "t") == 56);  // the ResNet stem
  Pool2dParams ceil;
  ceil.kernel = {3, 3};
  ceil.ceil_mode = true;
  CHECK(max_pool2d(zeros({1, 2, 6, 6}), ceil).shape() == Shape{1, 2, 3, 3});
}

TEST_CASE("avg_pool2d: count_include_pad divides by the window clipped to the padded input") {
  // 6x6 ones, 3x3 stride 2 pad 1, ceil_mode: 4x4 outputs. Corner (0,0): 4 real
  // values in a 3x3 window -> 4/9 (include pad) or 1. Corner (3,3): the window
  // [5, 8) is cut to [5, 7) by the padded edge, so 2x2 = 4 slots hold 1 real value.
  //   torch: F.avg_pool2d(torch.ones(1,1,6,6), 3, 2, 1, ceil_mode=True)[0,0,3,3] -> 0.25
  Pool2dParams p;
  p.kernel = {3, 3};
  p.padding = {1, 1};
  p.ceil_mode = true;
  const std::vector<double> with_pad = avg_pool2d(ones({1, 1, 6, 6}), p, true).to_vector();
  REQUIRE(with_pad.size() == 16);
  CHECK(with_pad[0] == doctest::Approx(4.0 / 9));
  CHECK(with_pad[15] == doctest::Approx(0.25));
  const std::vector<double> without_pad = avg_pool2d(ones({1, 1, 6, 6}), p, false).to_vector();
  for (double v : without_pad) CHECK(v == doctest::Approx(1.0));
}

TEST_CASE("norm and pool: errors name the op, the tensor, and what was expected") {
  const Tensor x = zeros({2, 64, 3, 3});
  test::expect_error_containing([&] { batch_norm(x, zeros({32}), Tensor(), Tensor(), Tensor(), {}); },
                                {"batch_norm: weight must be (C) = (64), got (32)"});
  test::expect_error_containing(
      [&] { batch_norm(x, zeros({64}, {DType::f64}), Tensor(), Tensor(), Tensor(), {}); },
      {"batch_norm: weight must be f32", "got f64"});
  BatchNormOptions eval;
  eval.training = false;
  test::expect_error_containing([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), eval); },
                                {"batch_norm", "eval", "running_mean"});
  test::expect_error_containing([&] { batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), {}); },
                                {"batch_norm", "more than 1 value per channel"});
  test::expect_error_containing([&] { batch_norm(zeros({2, 3, 4}), Tensor(), Tensor(), Tensor(), Tensor(), {}); },
                                {"batch_norm: x must be 4-D (N, C, H, W) or 2-D (N, C)", "(2, 3, 4)"});
  test::expect_error_containing([&] { max_pool2d(zeros({3, 4, 4}), Pool2dParams{}); },
                                {"max_pool2d: x must be 4-D", "(3, 4, 4)"});
  Pool2dParams too_much_padding;
  too_much_padding.padding = {2, 2};
  test::expect_error_containing([&] { avg_pool2d(x, too_much_padding); },
                                {"avg_pool2d: padding must be at most half the kernel size"});
  Pool2dParams big;
  big.kernel = {5, 5};
  test::expect_error_containing([&] { max_pool2d(x, big); }, {"max_pool2d: output size is 0", "kernel 5"});
  test::expect_error_containing([&] { adaptive_avg_pool2d(x, 0, 2); },
                                {"adaptive_avg_pool2d: output size must be positive"});
}
