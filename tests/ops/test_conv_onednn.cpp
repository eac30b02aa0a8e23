// The oneDNN convolution (engine/ops/onednn/conv_onednn.cpp) against the Eigen
// reference (engine/ops/cpu/conv_cpu.cpp), the way the CUDA kernels are tested
// against it: every conv row of the op table, plus the layer shapes of ResNet-18 and
// MobileNetV2 at a small size, forward and every input gradient, nchw and nhwc.
//
// f32 only: oneDNN has no f64 kernels, so the float64 finite-difference checks of
// the op table (test_op_table.cpp) run on the reference, which this file then ties
// the fast path to.
//
// Tolerances. Both sides compute in f32 with the same inputs; only the order of the
// additions differs (oneDNN blocks channels 16 at a time and splits reductions over
// threads). A sum of n products of order-1 values is then off by about sqrt(n) * 2^-24
// of its terms' size, and at worst n * 2^-24. The longest sums here have n = 288
// terms (a forward or backward-data sum over C/G*R*S = 32*3*3, a weight gradient over
// N*Ho*Wo = 2*12*12): n * 2^-24 ~ 1.7e-5, so relative L2 < 2e-5 and max-abs < 5e-5 of
// the tensor's own scale (measured, 2 threads: at most 4.2e-7 and 6.1e-7). A wrong
// index or a missed tap moves a value by a whole term, 0.05-1 here, far above both.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/onednn/onednn.h"
#include "engine/ops/op_table.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "fast_path_check.h"
#include "test_util.h"

using namespace kiln;

namespace {

constexpr double kRelL2 = 2e-5, kMaxAbs = 5e-5;

struct RestorePaths {  // put the settings back whatever happens
  CpuConvPath cpu = cpu_conv_path();
  DepthwiseConvPath depthwise = depthwise_conv_path();
  ~RestorePaths() {
    set_cpu_conv_path(cpu);
    set_depthwise_conv_path(depthwise);
  }
};

// Runs `f` on the reference and on oneDNN, in both layouts, and compares the output
// and every gradient.
void check_onednn_matches_reference(const std::string& name, const test::TensorFn& f, const std::vector<Tensor>& inputs,
                                    const std::vector<bool>& differentiable) {
  RestorePaths restore;
  set_depthwise_conv_path(DepthwiseConvPath::automatic);
  for (Layout layout : {Layout::nchw, Layout::nhwc}) {
    CAPTURE(name);
    CAPTURE(layout_name(layout));
    set_cpu_conv_path(CpuConvPath::eigen);
    const auto want = test::outputs_and_gradients(f, inputs, differentiable, false, layout);
    set_cpu_conv_path(CpuConvPath::onednn);
    test::check_results_close(test::outputs_and_gradients(f, inputs, differentiable, false, layout), want, kRelL2,
                              kMaxAbs);
  }
}

Conv2dParams params(int stride, int padding, int groups = 1) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {padding, padding};
  p.groups = groups;
  return p;
}

}  // namespace

TEST_CASE("oneDNN conv: every conv row of the op table matches the Eigen reference, forward and gradients") {
  int rows = 0;
  for (const OpCase& row : op_table()) {
    if (row.family != "conv") continue;
    ++rows;
    Rng rng(5);
    check_onednn_matches_reference(row.name, row.run, row.make_inputs(rng, DType::f32), row.differentiable);
  }
  CHECK(rows >= 12);
}

TEST_CASE("oneDNN conv: ResNet-18 and MobileNetV2 layer shapes match the Eigen reference") {
  struct Layer {
    const char* name;
    int64_t C, HW, K, RS;
    Conv2dParams params;
    bool bias;
  };
  // Batch 2 at 16 px (a 96-px image's sizes scaled down); channel counts as in the
  // models up to 64, which covers the blocked layouts' full and partial 16-channel blocks.
  const Layer layers[] = {
      {"resnet18 stem 7x7/2", 3, 16, 16, 7, params(2, 3), false},
      {"resnet18 block 3x3", 16, 8, 16, 3, params(1, 1), false},
      {"resnet18 downsample 3x3/2", 16, 8, 32, 3, params(2, 1), false},
      {"resnet18 shortcut 1x1/2", 16, 8, 32, 1, params(2, 0), false},
      {"mobilenetv2 stem 3x3/2", 3, 16, 32, 3, params(2, 1), false},
      {"mobilenetv2 depthwise 3x3", 32, 8, 32, 3, params(1, 1, 32), false},
      {"mobilenetv2 depthwise 3x3/2", 48, 8, 48, 3, params(2, 1, 48), false},
      {"mobilenetv2 expand 1x1", 24, 8, 48, 1, params(1, 0), false},
      {"mobilenetv2 project 1x1", 48, 8, 24, 1, params(1, 0), false},
      {"cnn5 3x3 with bias", 32, 8, 64, 3, params(1, 1), true},
  };
  for (const Layer& l : layers) {
    Rng rng(11);
    std::vector<Tensor> inputs{uniform({2, l.C, l.HW, l.HW}, -1, 1, rng),
                               uniform({l.K, l.C / l.params.groups, l.RS, l.RS}, -0.5, 0.5, rng)};
    if (l.bias) inputs.push_back(uniform({l.K}, -0.5, 0.5, rng));
    const Conv2dParams p = l.params;
    const bool bias = l.bias;
    check_onednn_matches_reference(
        l.name, [=](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], bias ? in[2] : Tensor(), p); },
        inputs, std::vector<bool>(inputs.size(), true));
  }
}

TEST_CASE("oneDNN conv: a repeated shape reuses its primitives, and f64 runs the reference") {
  RestorePaths restore;
  set_cpu_conv_path(CpuConvPath::onednn);
  Rng rng(2);
  const Tensor x = uniform({1, 5, 7, 7}, -1, 1, rng).set_requires_grad(true);
  const Tensor w = uniform({3, 5, 3, 3}, -1, 1, rng).set_requires_grad(true);
  auto step = [&] { sum(conv2d(x, w, Tensor(), params(1, 1))).backward(); };
  step();  // forward, backward-data and backward-weights: three primitives made
  const size_t after_first = onednn::conv_primitives_created();
  step();
  step();
  CHECK(onednn::conv_primitives_created() == after_first);

  // f64 has no oneDNN kernel: both settings run the same reference, bit for bit.
  const Tensor x64 = x.detach().to(DType::f64), w64 = w.detach().to(DType::f64);
  const std::vector<double> on_onednn = conv2d(x64, w64, Tensor(), params(1, 1)).to_vector();
  set_cpu_conv_path(CpuConvPath::eigen);
  CHECK(conv2d(x64, w64, Tensor(), params(1, 1)).to_vector() == on_onednn);
}

TEST_CASE("oneDNN conv: the KILN_CPU_CONV setting parses onednn and eigen, and names itself on anything else") {
  CHECK(parse_cpu_conv_path("onednn", "test") == CpuConvPath::onednn);
  CHECK(parse_cpu_conv_path("eigen", "test") == CpuConvPath::eigen);
  CHECK(std::string(cpu_conv_path_name(CpuConvPath::onednn)) == "onednn");
  test::expect_error_containing([] { parse_cpu_conv_path("mkl", "environment variable KILN_CPU_CONV"); },
                                {"KILN_CPU_CONV", "onednn", "eigen", "mkl"});
  CHECK(onednn::description().find("oneDNN") == 0);
}
