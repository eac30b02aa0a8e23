// resnet_custom: a configurable ResNet for small images, from kiln's layers, for
// benchmarks with rules (no fully connected layer, a parameter cap, separable convs).
//
//   x (N, C, H, W)
//   stem     3x3: conv 3x3/1 -> bn -> relu                          (N, w0, H, W)
//            7x7: conv 7x7/2 -> bn -> relu -> maxpool 3x3/2         (N, w0, H/4, W/4)
//   layer1   depths[0] blocks at widths[0], stride 1
//   layer_i  depths[i-1] blocks at widths[i-1], the first with stride 2 (halves H, W)
//   avgpool  global average over H x W                             (N, C_last, 1, 1)
//   classifier  conv 1x1 with bias on the pooled map (the "no FC" rule)  (N, K, 1, 1)
//   flatten  (in forward)                                           (N, K)
//
// Blocks (expansion 1 for basic, 4 for bottleneck, as in resnet.h):
//   basic        conv1 3x3/s -> bn1 -> relu -> conv2 3x3 -> bn2, + shortcut, relu
//   bottleneck   conv1 1x1 -> bn1 -> relu -> conv2 3x3/s -> bn2 -> relu
//                -> conv3 1x1 (to 4 w) -> bn3, + shortcut, relu
//   --preact     (He et al. 2016, identity mappings) bn -> relu -> conv in that
//                order inside the block, the sum left un-activated, and one
//                bn -> relu ("final_norm", "final_relu") before the pooling
//   --separable  every 3x3 conv of the blocks becomes SeparableConv2d: depthwise
//                3x3 (groups = C) -> pointwise 1x1 (C*9 + C*K weights instead of
//                C*K*9). The stem keeps a full conv (3 input channels: nothing to save).
//   shortcut     identity when shape is kept; else a projection to the block's
//                output "downsample": "0" conv 1x1/s (no bias) -> "1" bn, or with
//                --separable a separable 3x3/s -> bn, so that a separable net has
//                no plain 1x1 conv that widens (the course's no-1x1-expand rule).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/nn/layers.h"
#include "models/resnet.h"

namespace kiln::models {

struct ResNetCustomConfig {
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  BlockKind block = BlockKind::basic;
  std::vector<int> depths = {2, 2, 2, 2};           // blocks per stage
  std::vector<int64_t> widths = {64, 128, 256, 512};  // planes per stage (x4 out for bottleneck)
  std::string stem = "3x3";                         // 3x3 | 7x7
  bool separable = false;
  bool preact = false;

  std::string to_string() const;  // "resnet_custom basic [2,2,2,2] widths [64,...] stem 3x3 separable"
  // Saved in checkpoints, so `kiln eval` can rebuild the net; from_json throws
  // naming a missing or mistyped key.
  nlohmann::json to_json() const;
  static ResNetCustomConfig from_json(const nlohmann::json& json);
  // Every field checked, the error naming the flag (--depths, --widths, --stem, ...).
  void validate() const;
  // How many times the net halves H and W: the input must be divisible by 2^this.
  int downsampling_exponent() const;
};

// One residual block of either kind, post- or pre-activation, plain or separable.
class CustomBlock : public nn::Module {
 public:
  CustomBlock(BlockKind kind, int64_t in_channels, int64_t planes, int stride, bool separable, bool preact);
  std::string type_name() const override { return kind_ == BlockKind::basic ? "BasicBlock" : "Bottleneck"; }
  int64_t out_channels() const { return out_channels_; }

  nn::ModulePtr conv1, conv2, conv3;  // Conv2d or SeparableConv2d; conv3 only for bottleneck
  std::shared_ptr<nn::BatchNorm> bn1, bn2, bn3;
  std::shared_ptr<nn::ActivationLayer> relu;
  std::shared_ptr<nn::Sequential> downsample;  // null when the input already fits

 protected:
  Tensor forward_impl(const Tensor& x) override;

 private:
  BlockKind kind_;
  bool preact_;
  int64_t out_channels_;
};

class ResNetCustom : public nn::Module {
 public:
  explicit ResNetCustom(const ResNetCustomConfig& config);
  std::string type_name() const override { return "ResNetCustom"; }
  std::string extra_repr() const override { return config_.to_string(); }
  const ResNetCustomConfig& config() const { return config_; }

  std::shared_ptr<nn::Sequential> stem;
  std::vector<std::shared_ptr<nn::Sequential>> stages;  // "layer1", "layer2", ...
  std::shared_ptr<nn::BatchNorm> final_norm;            // preact only
  std::shared_ptr<nn::ActivationLayer> final_relu;      // preact only
  std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<nn::Conv2d> classifier;

 protected:
  Tensor forward_impl(const Tensor& x) override;

 private:
  ResNetCustomConfig config_;
};

// The receptive field of one output pixel of each stage, in input pixels (the
// course's rule of thumb: the last stage should see most of the image), along the
// main path, whose kernels see the most (a shortcut sees no more than it): over
// the convs and pools in order, with j the product of the strides so far,
//   r = 1, j = 1;  for each k x k layer of stride s:  r += (k - 1) j;  j *= s
// A separable 3x3 has the 3x3's field (the pointwise 1x1 adds nothing).
struct StageReceptiveField {
  std::string stage;        // "stem", "layer1", ...
  int64_t receptive_field;  // pixels on a side
  int64_t stride;           // j: input pixels between neighbouring outputs
};
std::vector<StageReceptiveField> receptive_fields(const ResNetCustomConfig& config);

// Built and initialised as torchvision initialises a ResNet (kaiming-normal fan-out
// convs, BN weight 1 / bias 0); the classifier conv likewise, bias 0.
std::shared_ptr<ResNetCustom> make_resnet_custom(const ResNetCustomConfig& config);

}  // namespace kiln::models
