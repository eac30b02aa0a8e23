// ResNet (He et al., 2015), with exactly torchvision's module tree and state_dict names.
//
//   x (N, 3, H, W)
//   conv1   7x7/2, 64          -> (N, 64, H/2, W/2)
//   bn1, relu
//   maxpool 3x3/2, padding 1   -> (N, 64, H/4, W/4)
//   layer1  blocks at  64 planes, stride 1
//   layer2  blocks at 128 planes, first block stride 2
//   layer3  blocks at 256 planes, first block stride 2
//   layer4  blocks at 512 planes, first block stride 2 -> (N, 512 * expansion, H/32, W/32)
//   avgpool adaptive to 1x1, flatten (in forward, as torch.flatten(x, 1))
//   fc      Linear(512 * expansion, K)
//
// Two residual blocks; both add the input (or its 1x1-conv projection, "downsample",
// when the stride or the width changes) before the last ReLU:
//   BasicBlock  (expansion 1): conv1 3x3 -> bn1 -> relu -> conv2 3x3 -> bn2
//   Bottleneck  (expansion 4): conv1 1x1 -> bn1 -> relu -> conv2 3x3 -> bn2 -> relu
//                              -> conv3 1x1 (to 4x planes) -> bn3
//   The Bottleneck strides on its 3x3 conv (torchvision's "v1.5"); the paper strided
//   on the first 1x1, which skips three quarters of the input pixels.
//
//   resnet18  BasicBlock [2, 2, 2, 2]   11,689,512 parameters (1000 classes)
//   resnet34  BasicBlock [3, 4, 6, 3]   21,797,672
//   resnet50  Bottleneck [3, 4, 6, 3]   25,557,032
//   resnet101 Bottleneck [3, 4, 23, 3]  44,549,160
#pragma once
#include <vector>

#include "engine/nn/layers.h"

namespace kiln::models {

enum class BlockKind { basic, bottleneck };

// x (N, C, H, W) -> (N, planes, H/stride, W/stride)
class BasicBlock : public nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t in_channels, int64_t planes, int stride);
  std::string type_name() const override { return "BasicBlock"; }
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm> bn1, bn2;
  std::shared_ptr<nn::ActivationLayer> relu;
  std::shared_ptr<nn::Sequential> downsample;  // "0" conv 1x1, "1" bn; null when x already fits

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// x (N, C, H, W) -> (N, 4 * planes, H/stride, W/stride)
class Bottleneck : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t in_channels, int64_t planes, int stride);
  std::string type_name() const override { return "Bottleneck"; }
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm> bn1, bn2, bn3;
  std::shared_ptr<nn::ActivationLayer> relu;
  std::shared_ptr<nn::Sequential> downsample;

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// x (N, 3, H, W), H, W >= 32 -> logits (N, K)
class ResNet : public nn::Module {
 public:
  // blocks_per_stage: how many blocks in layer1..layer4 ({2, 2, 2, 2} is ResNet-18).
  ResNet(BlockKind block, const std::vector<int>& blocks_per_stage, int64_t num_classes);
  std::string type_name() const override { return "ResNet"; }
  std::string extra_repr() const override;
  // The classifier; models::reset_head replaces its weights for a new class count.
  std::shared_ptr<nn::Linear> head() const { return fc; }

  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm> bn1;
  std::shared_ptr<nn::ActivationLayer> relu;
  std::shared_ptr<nn::MaxPool2d> maxpool;
  std::shared_ptr<nn::Sequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<nn::Linear> fc;

 protected:
  Tensor forward_impl(const Tensor& x) override;

 private:
  BlockKind block_;
  std::vector<int> blocks_per_stage_;
};

// Any depth, initialised as torchvision initialises it (kaiming-normal fan-out convs,
// BN weight 1 / bias 0, fc with nn.Linear's default).
std::shared_ptr<ResNet> make_resnet(BlockKind block, const std::vector<int>& blocks_per_stage, int64_t num_classes);
std::shared_ptr<ResNet> resnet18(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnet34(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnet50(int64_t num_classes = 1000);
std::shared_ptr<ResNet> resnet101(int64_t num_classes = 1000);

}  // namespace kiln::models
