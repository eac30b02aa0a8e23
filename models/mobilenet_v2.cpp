#include "models/mobilenet_v2.h"

#include <algorithm>
#include <cmath>

#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/ops/shape_ops.h"
#include "models/blocks.h"
#include "models/registry.h"

namespace kiln::models {

int64_t make_divisible(double v, int64_t divisor) {
  // Python's int(v + divisor / 2) // divisor * divisor truncates toward zero; v > 0 here.
  int64_t rounded = static_cast<int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor;
  rounded = std::max(divisor, rounded);
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

InvertedResidual::InvertedResidual(int64_t in_channels, int64_t out_channels, int stride, int64_t expand_ratio)
    : use_residual(stride == 1 && in_channels == out_channels) {
  KILN_CHECK(stride == 1 || stride == 2, "InvertedResidual: stride must be 1 or 2, got ", stride);
  const int64_t hidden = in_channels * expand_ratio;  // torchvision: int(round(inp * expand_ratio))
  conv = register_module("conv", std::make_shared<nn::Sequential>());
  if (expand_ratio != 1) conv->add(std::make_shared<ConvBNAct>(in_channels, hidden, 1, 1, 1, Activation::relu6));
  conv->add(std::make_shared<ConvBNAct>(hidden, hidden, 3, stride, static_cast<int>(hidden), Activation::relu6));
  conv->add(std::make_shared<nn::Conv2d>(hidden, out_channels, 1, 1, 0, 1, /*bias=*/false));
  conv->add(std::make_shared<nn::BatchNorm>(out_channels));
}

Tensor InvertedResidual::forward_impl(const Tensor& x) {
  const Tensor out = conv->forward(x);
  return use_residual ? add(x, out) : out;
}

MobileNetV2::MobileNetV2(int64_t num_classes, double width_multiplier, double dropout)
    : width_multiplier_(width_multiplier) {
  KILN_CHECK(width_multiplier > 0, "MobileNetV2: width_multiplier must be positive, got ", width_multiplier);
  KILN_CHECK(num_classes >= 1, "MobileNetV2: num_classes must be at least 1, got ", num_classes);
  struct Stage {
    int64_t expand_ratio, channels, blocks;
    int stride;
  };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t channels = make_divisible(32 * width_multiplier);
  // The last conv only grows with alpha > 1: shrinking it would starve the classifier.
  const int64_t last_channels = make_divisible(1280 * std::max(1.0, width_multiplier));
  features = register_module("features", std::make_shared<nn::Sequential>());
  features->add(std::make_shared<ConvBNAct>(3, channels, 3, 2, 1, Activation::relu6));
  for (const Stage& stage : stages) {
    const int64_t out_channels = make_divisible(static_cast<double>(stage.channels) * width_multiplier);
    for (int64_t i = 0; i < stage.blocks; ++i) {
      features->add(std::make_shared<InvertedResidual>(channels, out_channels, i == 0 ? stage.stride : 1,
                                                       stage.expand_ratio));
      channels = out_channels;
    }
  }
  features->add(std::make_shared<ConvBNAct>(channels, last_channels, 1, 1, 1, Activation::relu6));
  classifier = register_module("classifier", std::make_shared<nn::Sequential>());
  classifier->add(std::make_shared<nn::Dropout>(dropout, 0x4d42'0000))
      .add(std::make_shared<nn::Linear>(last_channels, num_classes));
}

Tensor MobileNetV2::forward_impl(const Tensor& x) {
  KILN_CHECK(x.dim() == 4 && x.shape()[1] == 3, "MobileNetV2: input must be (N, 3, H, W), got ", x.shape());
  const Tensor h = adaptive_avg_pool2d(features->forward(x), 1, 1);  // (N, 1280, 1, 1)
  return classifier->forward(flatten(h, 1));                         // (N, 1280) -> (N, K)
}

std::shared_ptr<nn::Linear> MobileNetV2::head() const {
  return std::dynamic_pointer_cast<nn::Linear>(classifier->child("1"));
}

std::shared_ptr<MobileNetV2> make_mobilenet_v2(int64_t num_classes, double width_multiplier, double dropout) {
  auto net = std::make_shared<MobileNetV2>(num_classes, width_multiplier, dropout);
  init_torchvision(*net, LinearInit::normal_001);
  return net;
}

void register_mobilenet_v2_models() {
  std::vector<std::string> stages;
  for (int i = 0; i <= 18; ++i) stages.push_back("features." + std::to_string(i));
  stages.push_back("classifier");
  register_model({"mobilenet_v2", "MobileNetV2, inverted residuals with ReLU6, width multiplier, 3.5M parameters",
                  [](int64_t num_classes, const ModelOptions& options) -> nn::ModulePtr {
                    return make_mobilenet_v2(num_classes, options.width_multiplier,
                                             options.dropout < 0 ? 0.2 : options.dropout);
                  },
                  "classifier.1", LinearInit::normal_001, stages});
}

}  // namespace kiln::models
