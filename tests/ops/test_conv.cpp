// conv2d, linear and matmul cases the op table cannot reach: numbers worked out by
// hand, the output-size formula, a direct 7-loop convolution as an independent
// reference for stride/dilation/groups, the boundary's error messages, and that a
// frozen weight gets no gradient. (Gradients themselves: the op table's gradcheck.)
#include <doctest/doctest.h>

#include "engine/ops/conv.h"
#include "engine/ops/linear.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

Conv2dParams params_of(std::array<int, 2> stride, std::array<int, 2> padding, std::array<int, 2> dilation = {1, 1},
                       int groups = 1) {
  Conv2dParams p;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.groups = groups;
  return p;
}

// The definition, written as directly as possible (no im2col): loops over every
// output element and every tap. Values in logical (N, C, H, W) order.
std::vector<double> direct_conv2d(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                                  const Shape& ws, const std::vector<double>& bias, const Conv2dParams& p) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], K = ws[0], Cg = ws[1], R = ws[2], S = ws[3];
  const int64_t Kg = K / p.groups;
  const int64_t Ho = conv2d_output_size(H, R, p.stride[0], p.padding[0], p.dilation[0]);
  const int64_t Wo = conv2d_output_size(W, S, p.stride[1], p.padding[1], p.dilation[1]);
  std::vector<double> y(static_cast<size_t>(N * K * Ho * Wo));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double total = bias.empty() ? 0.0 : bias[k];
          const int64_t group = k / Kg;  // output channel k reads input channels of its group only
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t s = 0; s < S; ++s) {
                const int64_t h = i * p.stride[0] - p.padding[0] + r * p.dilation[0];
                const int64_t wc = j * p.stride[1] - p.padding[1] + s * p.dilation[1];
                if (h < 0 || h >= H || wc < 0 || wc >= W) continue;
                total += w[((k * Cg + c) * R + r) * S + s] * x[((n * C + group * Cg + c) * H + h) * W + wc];
              }
          y[((n * K + k) * Ho + i) * Wo + j] = total;
        }
  (void)C;
  return y;
}

}  // namespace

TEST_CASE("conv2d: a 3x3 image and a 2x2 kernel, worked out by hand") {
  // x = [[1 2 3] [4 5 6] [7 8 9]], w = [[1 2] [3 4]], bias 0.5, stride 1, no padding:
  //   y[0,0] = 1*1 + 2*2 + 3*4 + 4*5 + 0.5 = 37.5, then 47.5, 67.5, 77.5
  const Tensor x = from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, {DType::f64}).set_requires_grad(true);
  const Tensor w = from_vector({1, 2, 3, 4}, {1, 1, 2, 2}, {DType::f64}).set_requires_grad(true);
  const Tensor b = from_vector({0.5}, {1}, {DType::f64}).set_requires_grad(true);
  const Tensor y = conv2d(x, w, b);
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(test::max_abs_diff(y.to_vector(), {37.5, 47.5, 67.5, 77.5}) < 1e-12);

  // L = sum(y): dL/dw[r,s] = sum of the pixels under tap (r,s) over the 4 windows;
  // dL/dx[h,w] = sum of the taps that land on (h,w); dL/db = number of outputs.
  sum(y).backward();
  CHECK(test::max_abs_diff(w.grad().to_vector(), {12, 16, 24, 28}) < 1e-12);
  CHECK(test::max_abs_diff(x.grad().to_vector(), {1, 3, 2, 4, 10, 6, 3, 7, 4}) < 1e-12);
  CHECK(test::max_abs_diff(b.grad().to_vector(), {4}) < 1e-12);

  // Padding 1 and stride 2: windows start at (-1,-1), (-1,1), (1,-1), (1,1).
  //   y[0,0] = 4*x[0,0] = 4;  y[0,1] = 3*2 + 4*3 = 18;  y[1,0] = 2*4 + 4*7 = 36;  y[1,1] = 77
  const Tensor y2 = conv2d(x.detach(), w.detach(), Tensor(), params_of({2, 2}, {1, 1}));
  CHECK(test::max_abs_diff(y2.to_vector(), {4, 18, 36, 77}) < 1e-12);
}

TEST_CASE("conv2d: output size formula (H + 2p - d(R-1) - 1) / s + 1") {
  CHECK(conv2d_output_size(224, 7, 2, 3, 1) == 112);  // ResNet stem
  CHECK(conv2d_output_size(56, 3, 1, 1, 1) == 56);    // "same" 3x3
  CHECK(conv2d_output_size(56, 3, 2, 1, 1) == 28);    // downsampling 3x3
  CHECK(conv2d_output_size(56, 1, 2, 0, 1) == 28);    // 1x1 projection shortcut
  CHECK(conv2d_output_size(7, 3, 1, 0, 2) == 3);      // dilation 2: a 5-pixel window
  CHECK(conv2d_output_size(5, 3, 2, 0, 1) == 2);      // the last partial window is dropped
  CHECK(conv2d_output_size(2, 3, 1, 0, 1) == 0);      // kernel larger than the image
}

TEST_CASE("conv2d: matches the direct definition for stride, dilation, groups and both layouts") {
  struct Case {
    const char* name;
    int64_t C, K, R, S;
    Conv2dParams params;
  };
  const std::vector<Case> cases{
      {"plain 3x3", 3, 4, 3, 3, params_of({1, 1}, {0, 0})},
      {"stride (2,3) pad (1,2)", 3, 4, 3, 3, params_of({2, 3}, {1, 2})},
      {"dilation (2,1)", 3, 4, 3, 2, params_of({1, 1}, {2, 1}, {2, 1})},
      {"groups 2", 4, 6, 3, 3, params_of({1, 1}, {1, 1}, {1, 1}, 2)},
      {"depthwise stride 2", 4, 4, 3, 3, params_of({2, 2}, {1, 1}, {1, 1}, 4)},
      {"depthwise multiplier 2", 3, 6, 3, 3, params_of({1, 1}, {1, 1}, {1, 1}, 3)},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Rng rng(5);
    const Shape xs{2, c.C, 7, 8}, ws{c.K, c.C / c.params.groups, c.R, c.S};
    const Tensor x = uniform(xs, -1, 1, rng, {DType::f64});
    const Tensor w = uniform(ws, -1, 1, rng, {DType::f64});
    const Tensor b = uniform({c.K}, -1, 1, rng, {DType::f64});
    const std::vector<double> want = direct_conv2d(x.to_vector(), xs, w.to_vector(), ws, b.to_vector(), c.params);
    const Tensor y = conv2d(x, w, b, c.params);
    CHECK(test::max_abs_diff(y.to_vector(), want) < 1e-12);
    const Tensor y_nhwc = conv2d(x.to(Layout::nhwc), w, b, c.params);
    CHECK(y_nhwc.layout() == Layout::nhwc);  // the output follows the input's layout
    CHECK(test::max_abs_diff(y_nhwc.to_vector(), want) < 1e-12);
    // f32 runs the same code: agreement to f32 rounding.
    const Tensor y32 = conv2d(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32), c.params);
    CHECK(test::max_abs_diff(y32.to_vector(), want) < 1e-5);
  }
}

TEST_CASE("conv2d: bad shapes, groups and dtypes are errors that name both shapes") {
  const Tensor x = zeros({1, 3, 8, 8});
  test::expect_error_containing([&] { conv2d(x, zeros({64, 1, 7, 7}), Tensor()); },
                                {"conv2d: weight must be (K, C/groups, R, S) = (64, 3, 7, 7), got (64, 1, 7, 7)"});
  test::expect_error_containing([&] { conv2d(zeros({1, 6, 8, 8}), zeros({4, 2, 3, 3}), Tensor(), params_of({1, 1}, {0, 0}, {1, 1}, 4)); },
                                {"conv2d: input channels C = 6 must be divisible by groups = 4"});
  test::expect_error_containing([&] { conv2d(zeros({1, 4, 8, 8}), zeros({6, 1, 3, 3}), Tensor(), params_of({1, 1}, {0, 0}, {1, 1}, 4)); },
                                {"conv2d: output channels K = 6 must be divisible by groups = 4"});
  test::expect_error_containing([&] { conv2d(x, zeros({4, 3, 3, 3}, {DType::f64}), Tensor()); },
                                {"conv2d", "one dtype", "f32", "f64"});
  test::expect_error_containing([&] { conv2d(x, zeros({4, 3, 3, 3}), zeros({5})); },
                                {"conv2d: bias must be (K) = (4,), got (5,)"});
  test::expect_error_containing([&] { conv2d(zeros({1, 3, 2, 2}), zeros({4, 3, 3, 3}), Tensor()); },
                                {"conv2d", "output would be empty"});
  test::expect_error_containing([&] { conv2d(zeros({3, 8, 8}), zeros({4, 3, 3, 3}), Tensor()); },
                                {"conv2d: x must be 4-D (N, C, H, W)"});
  test::expect_error_containing([&] { conv2d(x, zeros({4, 3, 3, 3}), Tensor(), params_of({0, 1}, {0, 0})); },
                                {"conv2d", "stride"});
}

TEST_CASE("conv2d: a frozen weight gets no gradient, the input still does") {
  Rng rng(1);
  const Tensor x = uniform({2, 3, 5, 5}, -1, 1, rng, {DType::f64}).set_requires_grad(true);
  const Tensor w = uniform({4, 3, 3, 3}, -1, 1, rng, {DType::f64});  // frozen: requires_grad false
  const Tensor b = uniform({4}, -1, 1, rng, {DType::f64}).set_requires_grad(true);
  sum(conv2d(x, w, b, params_of({1, 1}, {1, 1}))).backward();
  CHECK(x.grad().defined());
  CHECK(x.grad().shape() == x.shape());
  CHECK(b.grad().defined());
  CHECK(!w.grad().defined());

  // And the other way round: data that needs no gradient, a trainable weight.
  const Tensor data = uniform({2, 3, 5, 5}, -1, 1, rng, {DType::f64}).to(Layout::nhwc);
  const Tensor w2 = uniform({4, 3, 3, 3}, -1, 1, rng, {DType::f64}).set_requires_grad(true);
  sum(conv2d(data, w2, Tensor())).backward();
  CHECK(!data.grad().defined());
  REQUIRE(w2.grad().defined());
  CHECK(w2.grad().layout() == Layout::nchw);  // gradients come back in their tensor's layout
}

TEST_CASE("linear and matmul: numbers by hand, batches, and error messages") {
  // y = x W^T + b with x = [[1 2] [3 4]], W = [[1 0] [0 1] [1 1]], b = [0.5 -1 0]
  const Tensor x = from_vector({1, 2, 3, 4}, {2, 2}, {DType::f64});
  const Tensor w = from_vector({1, 0, 0, 1, 1, 1}, {3, 2}, {DType::f64});
  const Tensor b = from_vector({0.5, -1, 0}, {3}, {DType::f64});
  CHECK(test::max_abs_diff(linear(x, w, b).to_vector(), {1.5, 1, 3, 3.5, 3, 7}) < 1e-12);
  // [[1 2] [3 4]] . [[1 0 1] [0 1 1]] = [[1 2 3] [3 4 7]]
  const Tensor wt = from_vector({1, 0, 1, 0, 1, 1}, {2, 3}, {DType::f64});
  CHECK(test::max_abs_diff(matmul(x, wt).to_vector(), {1, 2, 3, 3, 4, 7}) < 1e-12);

  // A batched product is the 2-D product of each batch entry.
  Rng rng(2);
  const Tensor a = uniform({3, 4, 5}, -1, 1, rng, {DType::f64});
  const Tensor c = uniform({3, 5, 2}, -1, 1, rng, {DType::f64});
  const Tensor batched = matmul(a, c);
  CHECK(batched.shape() == Shape{3, 4, 2});
  for (int64_t i = 0; i < 3; ++i) {
    const Tensor a_i = a.narrow0(i, 1).clone(), c_i = c.narrow0(i, 1).clone();
    const Tensor one = matmul(from_vector(a_i.to_vector(), {4, 5}, {DType::f64}),
                              from_vector(c_i.to_vector(), {5, 2}, {DType::f64}));
    CHECK(test::max_abs_diff(batched.narrow0(i, 1).to_vector(), one.to_vector()) < 1e-12);
  }

  test::expect_error_containing([&] { matmul(zeros({4, 5}), zeros({6, 3})); },
                                {"matmul: a (4, 5) and b (6, 3) do not multiply"});
  test::expect_error_containing([&] { linear(zeros({2, 5}), zeros({3, 4}), Tensor()); },
                                {"linear: weight must be (out, in) = (3, 5), got (3, 4)"});
  test::expect_error_containing([&] { linear(zeros({2, 4}), zeros({3, 4}), zeros({2})); },
                                {"linear: bias must be (out) = (3,), got (2,)"});
}
