// Depthwise convolution on the GPU: kiln's kernels (kernels/depthwise_conv.cu),
// cuDNN's grouped convolution, and the automatic race between them, each forced in
// turn, against the CPU reference, forward and both backwards, in f32, f16 and bf16,
// nchw and nhwc. Skips with a message where there is no GPU.
#include <doctest/doctest.h>

#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

struct DepthwiseCase {
  const char* name;
  int64_t C, multiplier, kernel;
  int stride, padding, dilation;
};

struct Outputs {
  std::vector<double> y, grad_x, grad_w;
};

// conv2d and its gradients on `device` in `dtype` and `layout`, from the f32 CPU inputs.
Outputs run(const Tensor& x32, const Tensor& w32, const Tensor& weights32, const Conv2dParams& params,
            const Device& device, DType dtype, Layout layout) {
  const Tensor x = x32.to(dtype).to(device).to(layout).detach().set_requires_grad(true);
  const Tensor w = w32.to(dtype).to(device).detach().set_requires_grad(true);
  const Tensor y = conv2d(x, w, Tensor(), params);
  const Tensor weights = weights32.to(dtype).to(device).to(layout);
  sum(mul(y, weights).to(DType::f32)).backward();
  auto host = [](const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector(); };
  return {host(y), host(x.grad()), host(w.grad())};
}

}  // namespace

TEST_CASE("depthwise conv on CUDA: kiln's kernel, cuDNN and the race all match the CPU" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("depthwise conv CUDA parity (custom kernel, cuDNN, auto)")) return;
  struct Restore {
    DepthwiseConvPath saved = depthwise_conv_path();
    ~Restore() { set_depthwise_conv_path(saved); }
  } restore;
  const std::vector<DepthwiseCase> cases{
      {"3x3 same", 8, 1, 3, 1, 1, 1},
      {"3x3 stride 2", 12, 1, 3, 2, 1, 1},
      {"5x5 dilation 2 pad 2", 6, 1, 5, 1, 2, 2},
      {"multiplier 2, stride 2, no pad", 5, 2, 3, 2, 0, 1},
      {"many channels (a partial 32-channel tile)", 40, 1, 3, 1, 1, 1},
  };
  for (const DepthwiseCase& c : cases) {
    CAPTURE(c.name);
    Conv2dParams params;
    params.stride = {c.stride, c.stride};
    params.padding = {c.padding, c.padding};
    params.dilation = {c.dilation, c.dilation};
    params.groups = static_cast<int>(c.C);
    Rng rng(17);
    const Tensor x = uniform({3, c.C, 13, 11}, -1, 1, rng);
    const Tensor w = uniform({c.C * c.multiplier, 1, c.kernel, c.kernel}, -1, 1, rng);
    const Shape y_shape = conv2d(x, w, Tensor(), params).shape();
    const Tensor weights = uniform(y_shape, 0.5, 1.5, rng);
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      CAPTURE(dtype_name(dtype));
      // The reference: the CPU in f32 from the inputs rounded to the dtype under test.
      const Tensor x_r = x.to(dtype).to(DType::f32), w_r = w.to(dtype).to(DType::f32);
      const Tensor weights_r = weights.to(dtype).to(DType::f32);
      const Outputs want = run(x_r, w_r, weights_r, params, Device::cpu(), DType::f32, Layout::nchw);
      // f32: FMA-order differences only. 16-bit: outputs and gradients are stored in
      // 16 bits (bf16 keeps 8 mantissa bits: a relative step of 2^-8).
      const double tolerance = dtype == DType::f32 ? 1e-5 : dtype == DType::f16 ? 5e-3 : 2e-2;
      for (DepthwiseConvPath path : {DepthwiseConvPath::custom, DepthwiseConvPath::library,
                                     DepthwiseConvPath::automatic}) {
        set_depthwise_conv_path(path);
        for (Layout layout : {Layout::nchw, Layout::nhwc}) {
          CAPTURE(depthwise_conv_path_name(path));
          CAPTURE(layout_name(layout));
          const Outputs got = run(x_r, w_r, weights_r, params, Device::cuda(0), dtype, layout);
          CHECK(test::relative_l2(got.y, want.y) < tolerance);
          CHECK(test::relative_l2(got.grad_x, want.grad_x) < tolerance);
          CHECK(test::relative_l2(got.grad_w, want.grad_w) < tolerance);
        }
      }
    }
  }
#if KILN_WITH_CUDA
  // The automatic runs raced both implementations and kept one per direction and shape.
  const std::vector<std::string> choices = cuda::depthwise_choices();
  CHECK(!choices.empty());
  for (const std::string& line : choices) MESSAGE(line);
#endif
}
