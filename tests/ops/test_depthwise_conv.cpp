// The direct depthwise kernels (engine/ops/cpu/depthwise_conv_cpu.cpp) against the
// grouped im2col + GEMM reference (engine/ops/cpu/conv_cpu.cpp): forward and both
// backwards, f64 to 1e-12, over a grid of strides, paddings, dilations, kernel sizes,
// channel multipliers and odd image sizes, in both layouts; then the same through the
// public op with the path forced each way (KILN_DEPTHWISE's setting), and the
// setting's parser. (Finite-difference gradients: the op table's depthwise rows.)
#include <doctest/doctest.h>

#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

// (N, C, H, W) row-major -> (N, H, W, C), and back.
std::vector<double> to_channels_last(const std::vector<double>& a, int64_t N, int64_t C, int64_t H, int64_t W) {
  std::vector<double> out(a.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < H * W; ++p) out[(n * H * W + p) * C + c] = a[(n * C + c) * H * W + p];
  return out;
}
std::vector<double> to_channels_first(const std::vector<double>& a, int64_t N, int64_t C, int64_t H, int64_t W) {
  std::vector<double> out(a.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < H * W; ++p) out[(n * C + c) * H * W + p] = a[(n * H * W + p) * C + c];
  return out;
}

std::vector<double> random_values(size_t count, Rng& rng) {
  return uniform({static_cast<int64_t>(count)}, -1, 1, rng, {DType::f64}).to_vector();
}

Conv2dParams depthwise_params(int64_t C, int stride, int padding, int dilation) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {padding, padding};
  p.dilation = {dilation, dilation};
  p.groups = static_cast<int>(C);
  return p;
}

}  // namespace

TEST_CASE("depthwise conv: the direct kernels equal the grouped GEMM, every direction, both layouts") {
  int shapes_checked = 0;
  for (int kernel : {3, 5})
    for (int stride : {1, 2})
      for (int padding : {0, 1, 2})
        for (int dilation : {1, 2})
          for (int64_t multiplier : {1, 2}) {
            const int64_t N = 2, C = 3, H = 11, W = 9, K = C * multiplier;
            const Conv2dParams params = depthwise_params(C, stride, padding, dilation);
            const Conv2dGeometry g = conv2d_geometry("test", {N, C, H, W}, {K, 1, kernel, kernel}, params);
            REQUIRE(g.depthwise());
            CAPTURE(kernel);
            CAPTURE(stride);
            CAPTURE(padding);
            CAPTURE(dilation);
            CAPTURE(multiplier);
            Rng rng(static_cast<uint64_t>(kernel * 1000 + stride * 100 + padding * 10 + dilation + multiplier * 7));
            const std::vector<double> x = random_values(N * C * H * W, rng), w = random_values(K * kernel * kernel, rng),
                                      bias = random_values(K, rng), dy = random_values(N * K * g.Ho * g.Wo, rng);
            // The reference: one im2col + GEMM per (image, group).
            std::vector<double> y_ref(dy.size()), dx_ref(x.size()), dw_ref(w.size());
            cpu::conv2d_forward<double>(x.data(), w.data(), bias.data(), y_ref.data(), g);
            cpu::conv2d_backward_input<double>(dy.data(), w.data(), dx_ref.data(), g);
            cpu::conv2d_backward_weight<double>(dy.data(), x.data(), dw_ref.data(), g);

            // nchw: the direct kernels on the same arrays (outputs start as garbage: they must be overwritten).
            std::vector<double> y(dy.size(), 7.0), dx(x.size(), 7.0), dw(w.size(), 7.0);
            cpu::depthwise_conv2d_forward<double>(x.data(), w.data(), bias.data(), y.data(), g, false);
            cpu::depthwise_conv2d_backward_input<double>(dy.data(), w.data(), dx.data(), g, false);
            cpu::depthwise_conv2d_backward_weight<double>(dy.data(), x.data(), dw.data(), g, false);
            CHECK(test::max_abs_diff(y, y_ref) < 1e-12);
            CHECK(test::max_abs_diff(dx, dx_ref) < 1e-12);
            CHECK(test::max_abs_diff(dw, dw_ref) < 1e-12);

            // nhwc: inputs transposed in, outputs transposed back out.
            const std::vector<double> x_cl = to_channels_last(x, N, C, H, W);
            const std::vector<double> dy_cl = to_channels_last(dy, N, K, g.Ho, g.Wo);
            std::vector<double> y_cl(dy.size(), 7.0), dx_cl(x.size(), 7.0), dw_cl(w.size(), 7.0);
            cpu::depthwise_conv2d_forward<double>(x_cl.data(), w.data(), bias.data(), y_cl.data(), g, true);
            cpu::depthwise_conv2d_backward_input<double>(dy_cl.data(), w.data(), dx_cl.data(), g, true);
            cpu::depthwise_conv2d_backward_weight<double>(dy_cl.data(), x_cl.data(), dw_cl.data(), g, true);
            CHECK(test::max_abs_diff(to_channels_first(y_cl, N, K, g.Ho, g.Wo), y_ref) < 1e-12);
            CHECK(test::max_abs_diff(to_channels_first(dx_cl, N, C, H, W), dx_ref) < 1e-12);
            CHECK(test::max_abs_diff(dw_cl, dw_ref) < 1e-12);
            ++shapes_checked;
          }
  CHECK(shapes_checked == 2 * 2 * 3 * 2 * 2);
}

TEST_CASE("depthwise conv: the op gives the same values and gradients on either path, f32 and f64") {
  struct Restore {  // put the setting back whatever happens
    DepthwiseConvPath saved = depthwise_conv_path();
    ~Restore() { set_depthwise_conv_path(saved); }
  } restore;
  Conv2dParams params = depthwise_params(5, 2, 1, 1);
  params.stride = {2, 1};  // different strides per axis catch swapped h/w
  for (DType dtype : {DType::f64, DType::f32})
    for (Layout layout : {Layout::nchw, Layout::nhwc}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(layout_name(layout));
      std::vector<std::vector<double>> results[2];
      for (DepthwiseConvPath path : {DepthwiseConvPath::library, DepthwiseConvPath::custom}) {
        set_depthwise_conv_path(path);
        Rng rng(3);
        const Tensor x = uniform({3, 5, 9, 7}, -1, 1, rng, {dtype}).to(layout).set_requires_grad(true);
        const Tensor w = uniform({10, 1, 3, 3}, -1, 1, rng, {dtype}).set_requires_grad(true);
        const Tensor b = uniform({10}, -1, 1, rng, {dtype}).set_requires_grad(true);
        const Tensor y = conv2d(x, w, b, params);
        CHECK(y.layout() == layout);
        const Tensor weights = uniform(y.shape(), 0.5, 1.5, rng, {dtype});
        sum(mul(y, weights)).backward();
        results[path == DepthwiseConvPath::custom] = {y.to_vector(), x.grad().to_vector(), w.grad().to_vector(),
                                                      b.grad().to_vector()};
      }
      const double tolerance = dtype == DType::f64 ? 1e-12 : 1e-4;
      for (size_t i = 0; i < results[0].size(); ++i) {
        CAPTURE(i);
        CHECK(test::max_abs_diff(results[1][i], results[0][i]) < tolerance);
      }
    }
}

TEST_CASE("depthwise conv: KILN_DEPTHWISE's values, and a clear error for anything else") {
  CHECK(parse_depthwise_conv_path("auto", "test") == DepthwiseConvPath::automatic);
  CHECK(parse_depthwise_conv_path("custom", "test") == DepthwiseConvPath::custom);
  CHECK(parse_depthwise_conv_path("cudnn", "test") == DepthwiseConvPath::library);
  CHECK(parse_depthwise_conv_path("gemm", "test") == DepthwiseConvPath::library);
  test::expect_error_containing([] { parse_depthwise_conv_path("fast", "environment variable KILN_DEPTHWISE"); },
                                {"KILN_DEPTHWISE", "auto, custom or cudnn", "'fast'"});
}
