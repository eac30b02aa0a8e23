#include "models/resnet.h"

#include "engine/ops/elementwise.h"
#include "engine/ops/shape_ops.h"
#include "models/blocks.h"
#include "models/registry.h"

namespace kiln::models {

namespace {

// The shortcut's projection when the block changes the stride or the width:
// "0" conv 1x1 (stride s, no bias) -> "1" bn, as torchvision names it.
std::shared_ptr<nn::Sequential> make_downsample(int64_t in_channels, int64_t out_channels, int stride) {
  if (stride == 1 && in_channels == out_channels) return nullptr;
  auto downsample = std::make_shared<nn::Sequential>();
  downsample->add(std::make_shared<nn::Conv2d>(in_channels, out_channels, 1, stride, 0, 1, /*bias=*/false));
  downsample->add(std::make_shared<nn::BatchNorm>(out_channels));
  return downsample;
}

std::shared_ptr<nn::Conv2d> conv3x3(int64_t in_channels, int64_t out_channels, int stride) {
  return std::make_shared<nn::Conv2d>(in_channels, out_channels, 3, stride, 1, 1, /*bias=*/false);
}

std::shared_ptr<nn::Conv2d> conv1x1(int64_t in_channels, int64_t out_channels) {
  return std::make_shared<nn::Conv2d>(in_channels, out_channels, 1, 1, 0, 1, /*bias=*/false);
}

}  // namespace

// Children are registered in torchvision's order, so that to_string() prints the
// same tree as print(model) and state_dict() walks the same names.
BasicBlock::BasicBlock(int64_t in_channels, int64_t planes, int stride) {
  conv1 = register_module("conv1", conv3x3(in_channels, planes, stride));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(planes));
  relu = register_module("relu", std::make_shared<nn::ActivationLayer>(Activation::relu));
  conv2 = register_module("conv2", conv3x3(planes, planes, 1));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(planes));
  if (auto projection = make_downsample(in_channels, planes * expansion, stride))
    downsample = register_module("downsample", projection);
}

// bn + relu and add + relu run as the fused ops batch_norm_act and add_relu
// (nn::batch_norm_then_activation, add_then_activation): same values and gradients,
// two fewer passes over the activations and no pre-activation tensors kept for
// backward. A hook on `relu` (kiln visualize) makes them the separate calls again.
Tensor BasicBlock::forward_impl(const Tensor& x) {
  Tensor out = nn::batch_norm_then_activation(*bn1, *relu, conv1->forward(x));
  out = bn2->forward(conv2->forward(out));
  const Tensor identity = downsample ? downsample->forward(x) : x;
  return nn::add_then_activation(*relu, out, identity);  // the tape sums both branches' gradients at x
}

Bottleneck::Bottleneck(int64_t in_channels, int64_t planes, int stride) {
  conv1 = register_module("conv1", conv1x1(in_channels, planes));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes, stride));  // v1.5: the stride sits here
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(planes));
  conv3 = register_module("conv3", conv1x1(planes, planes * expansion));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm>(planes * expansion));
  relu = register_module("relu", std::make_shared<nn::ActivationLayer>(Activation::relu));
  if (auto projection = make_downsample(in_channels, planes * expansion, stride))
    downsample = register_module("downsample", projection);
}

Tensor Bottleneck::forward_impl(const Tensor& x) {
  Tensor out = nn::batch_norm_then_activation(*bn1, *relu, conv1->forward(x));
  out = nn::batch_norm_then_activation(*bn2, *relu, conv2->forward(out));
  out = bn3->forward(conv3->forward(out));
  const Tensor identity = downsample ? downsample->forward(x) : x;
  return nn::add_then_activation(*relu, out, identity);
}

ResNet::ResNet(BlockKind block, const std::vector<int>& blocks_per_stage, int64_t num_classes)
    : block_(block), blocks_per_stage_(blocks_per_stage) {
  KILN_CHECK(blocks_per_stage.size() == 4, "ResNet: expected 4 stage depths (layer1..layer4), got ",
             blocks_per_stage.size());
  KILN_CHECK(num_classes >= 1, "ResNet: num_classes must be at least 1, got ", num_classes);
  const int64_t expansion = block == BlockKind::basic ? BasicBlock::expansion : Bottleneck::expansion;
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(3, 64, 7, 2, 3, 1, /*bias=*/false));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(64));
  relu = register_module("relu", std::make_shared<nn::ActivationLayer>(Activation::relu));
  maxpool = register_module("maxpool", std::make_shared<nn::MaxPool2d>(Pool2dParams::square(3, 2, 1)));
  int64_t channels = 64;
  std::shared_ptr<nn::Sequential>* layers[4] = {&layer1, &layer2, &layer3, &layer4};
  for (int stage = 0; stage < 4; ++stage) {
    KILN_CHECK(blocks_per_stage[stage] >= 1, "ResNet: layer", stage + 1, " needs at least one block, got ",
               blocks_per_stage[stage]);
    const int64_t planes = int64_t{64} << stage;
    auto layer = std::make_shared<nn::Sequential>();
    for (int i = 0; i < blocks_per_stage[stage]; ++i) {
      const int stride = (stage > 0 && i == 0) ? 2 : 1;  // each stage after the first halves H and W once
      if (block == BlockKind::basic)
        layer->add(std::make_shared<BasicBlock>(channels, planes, stride));
      else
        layer->add(std::make_shared<Bottleneck>(channels, planes, stride));
      channels = planes * expansion;
    }
    *layers[stage] = register_module("layer" + std::to_string(stage + 1), layer);
  }
  avgpool = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1, 1));
  fc = register_module("fc", std::make_shared<nn::Linear>(channels, num_classes));
}

Tensor ResNet::forward_impl(const Tensor& x) {
  KILN_CHECK(x.dim() == 4 && x.shape()[1] == 3, "ResNet: input must be (N, 3, H, W), got ", x.shape());
  Tensor h = maxpool->forward(nn::batch_norm_then_activation(*bn1, *relu, conv1->forward(x)));  // (N, 64, H/4, W/4)
  h = layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));   // (N, 512 e, H/32, W/32)
  return fc->forward(flatten(avgpool->forward(h), 1));                        // (N, K)
}

std::string ResNet::extra_repr() const {
  std::string depths;
  for (int d : blocks_per_stage_) depths += (depths.empty() ? "" : ", ") + std::to_string(d);
  return str(block_ == BlockKind::basic ? "BasicBlock" : "Bottleneck", " [", depths, "]");
}

std::shared_ptr<ResNet> make_resnet(BlockKind block, const std::vector<int>& blocks_per_stage, int64_t num_classes) {
  auto net = std::make_shared<ResNet>(block, blocks_per_stage, num_classes);
  init_torchvision(*net, LinearInit::pytorch_default);
  return net;
}

std::shared_ptr<ResNet> resnet18(int64_t num_classes) { return make_resnet(BlockKind::basic, {2, 2, 2, 2}, num_classes); }
std::shared_ptr<ResNet> resnet34(int64_t num_classes) { return make_resnet(BlockKind::basic, {3, 4, 6, 3}, num_classes); }
std::shared_ptr<ResNet> resnet50(int64_t num_classes) {
  return make_resnet(BlockKind::bottleneck, {3, 4, 6, 3}, num_classes);
}
std::shared_ptr<ResNet> resnet101(int64_t num_classes) {
  return make_resnet(BlockKind::bottleneck, {3, 4, 23, 3}, num_classes);
}

void register_resnet_models() {
  struct Variant {
    const char* name;
    BlockKind block;
    std::vector<int> depths;
    const char* description;
  };
  const Variant variants[] = {
      {"resnet18", BlockKind::basic, {2, 2, 2, 2}, "ResNet-18, BasicBlock [2, 2, 2, 2], 11.7M parameters"},
      {"resnet34", BlockKind::basic, {3, 4, 6, 3}, "ResNet-34, BasicBlock [3, 4, 6, 3], 21.8M parameters"},
      {"resnet50", BlockKind::bottleneck, {3, 4, 6, 3}, "ResNet-50, Bottleneck [3, 4, 6, 3], 25.6M parameters"},
      {"resnet101", BlockKind::bottleneck, {3, 4, 23, 3}, "ResNet-101, Bottleneck [3, 4, 23, 3], 44.5M parameters"},
  };
  for (const Variant& v : variants) {
    const std::string name = v.name;
    const BlockKind block = v.block;
    const std::vector<int> depths = v.depths;
    register_model({name, v.description,
                    [name, block, depths](int64_t num_classes, const ModelOptions& options) -> nn::ModulePtr {
                      KILN_CHECK(options.width_multiplier == 1.0, name, ": width_multiplier must be 1.0 (only ",
                                 "mobilenet_v2 has one), got ", options.width_multiplier);
                      KILN_CHECK(options.dropout < 0, name, ": ResNet has no dropout layer; leave dropout unset, got ",
                                 options.dropout);
                      return make_resnet(block, depths, num_classes);
                    },
                    "fc", LinearInit::pytorch_default, {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"}});
  }
}

}  // namespace kiln::models
