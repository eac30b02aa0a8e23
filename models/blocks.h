// Building blocks shared by the torchvision-shaped models (resnet, vgg, mobilenet_v2).
//
// Nothing here adds math: these are the small pieces torchvision assembles its
// networks from, kept under the same names so that a torchvision state_dict loads
// 1:1 ("features.0.1.running_var" is the same tensor in both libraries).
//
//   ConvBNAct         torchvision.ops.Conv2dNormActivation: a Sequential
//                     "0" conv (no bias) -> "1" batch norm -> "2" activation
//                     (Sequential runs "1" and "2" as one fused batch_norm_act
//                     for relu/relu6; the modules and their names stay)
//   init_torchvision  the weight init loop every torchvision classifier runs
//                     after building itself (kaiming-normal convs, BN 1/0, ...)
//   for_each_module   a depth-first walk with dotted names, as torch's named_modules()
#pragma once
#include <functional>
#include <string>

#include "engine/core/rng.h"
#include "engine/nn/layers.h"

namespace kiln::models {

// x (N, C, H, W) -> (N, K, Ho, Wo). Padding (kernel - 1) / 2 keeps H x W at stride 1,
// and the conv has no bias: the batch norm right after it would cancel any bias.
class ConvBNAct : public nn::Sequential {
 public:
  ConvBNAct(int64_t in_channels, int64_t out_channels, int kernel, int stride = 1, int groups = 1,
            Activation activation = Activation::relu);
  std::string type_name() const override { return "Conv2dNormActivation"; }
};

// How a model initialises its Linear layers after construction.
enum class LinearInit {
  pytorch_default,  // keep nn::Linear's kaiming-uniform(a = sqrt(5)) (torchvision ResNet)
  normal_001,       // weight ~ N(0, 0.01^2), bias = 0 (torchvision VGG and MobileNetV2)
};

// The loop torchvision runs at the end of ResNet/VGG/MobileNetV2.__init__:
//   Conv2d:    weight ~ kaiming_normal(mode=fan_out, relu), bias = 0
//   BatchNorm: weight = 1, bias = 0
//   Linear:    as `linear_init` says
void init_torchvision(nn::Module& model, LinearInit linear_init);
void init_linear(nn::Linear& linear, LinearInit linear_init);

// Fills an f32 CPU tensor in place with N(0, std^2) draws from `rng`.
void fill_normal_(const Tensor& tensor, double std_dev, Rng& rng);

// Calls fn(name, module) for `root` ("") and every descendant ("layer1.0.conv1"), parents first.
void for_each_module(nn::Module& root, const std::function<void(const std::string&, nn::Module&)>& fn);

// The descendant at a dotted path ("classifier.6"); errors name the missing part.
std::shared_ptr<nn::Module> find_module(const nn::Module& root, const std::string& path);

}  // namespace kiln::models
