// MobileNetV2 (Sandler et al., 2018), with exactly torchvision 0.14's module tree and names.
//
//   x (N, 3, H, W)
//   features.0      ConvBNAct 3x3/2, 32 alpha, ReLU6           -> (N, 32a, H/2, W/2)
//   features.1..17  inverted residual blocks, (t, c, n, s) =
//                   (1, 16, 1, 1) (6, 24, 2, 2) (6, 32, 3, 2) (6, 64, 4, 2)
//                   (6, 96, 3, 1) (6, 160, 3, 2) (6, 320, 1, 1)
//                   t expansion, c output channels (times alpha), n blocks, s first stride
//   features.18     ConvBNAct 1x1 to 1280 (times alpha when alpha > 1), ReLU6
//   global average pool + flatten (in forward, as torchvision's F.adaptive_avg_pool2d)
//   classifier      "0" Dropout(0.2) "1" Linear(1280, K)
//
// An inverted residual widens, filters per channel, then narrows without a ReLU:
//   conv.0    ConvBNAct 1x1, C -> tC, ReLU6         (absent when t = 1)
//   conv.1    ConvBNAct 3x3 depthwise (groups = tC), stride s, ReLU6
//   conv.2    conv 1x1, tC -> c ("linear bottleneck": a ReLU here would destroy
//   conv.3    batch norm         information in the narrow space)
//   out = x + conv(x) when s = 1 and C = c, else conv(x)
// With t = 1 the indices shift down by one: conv.0 is the depthwise ConvBNAct,
// conv.1 the projection, conv.2 its batch norm.
//
// Channel counts under a width multiplier alpha are rounded by make_divisible (to a
// multiple of 8, never down by more than 10%), as torchvision does.
// 3,504,872 parameters at alpha = 1 with 1000 classes.
#pragma once
#include "engine/nn/layers.h"

namespace kiln::models {

// torchvision's _make_divisible: the nearest multiple of `divisor` to v, at least
// `divisor`, bumped up one step if rounding lost more than 10% of v.
int64_t make_divisible(double v, int64_t divisor = 8);

// x (N, C, H, W) -> (N, c, H/s, W/s)
class InvertedResidual : public nn::Module {
 public:
  InvertedResidual(int64_t in_channels, int64_t out_channels, int stride, int64_t expand_ratio);
  std::string type_name() const override { return "InvertedResidual"; }
  std::shared_ptr<nn::Sequential> conv;
  bool use_residual;  // stride 1 and C == c: the shapes allow x + conv(x)

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// x (N, 3, H, W), H, W >= 32 -> logits (N, K)
class MobileNetV2 : public nn::Module {
 public:
  MobileNetV2(int64_t num_classes, double width_multiplier = 1.0, double dropout = 0.2);
  std::string type_name() const override { return "MobileNetV2"; }
  std::string extra_repr() const override { return str("width_multiplier=", width_multiplier_); }
  // The classifier; models::reset_head replaces its weights for a new class count.
  std::shared_ptr<nn::Linear> head() const;

  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Sequential> classifier;

 protected:
  Tensor forward_impl(const Tensor& x) override;

 private:
  double width_multiplier_;
};

// Built and initialised as torchvision does (kaiming-normal fan-out convs, BN 1/0,
// Linear N(0, 0.01^2) with zero bias).
std::shared_ptr<MobileNetV2> make_mobilenet_v2(int64_t num_classes, double width_multiplier = 1.0,
                                               double dropout = 0.2);

}  // namespace kiln::models
