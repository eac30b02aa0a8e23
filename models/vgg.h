// VGG (Simonyan & Zisserman, 2014), with exactly torchvision's module tree and names.
//
//   x (N, 3, H, W)
//   features    stacks of [conv 3x3 pad 1 -> (bn) -> relu], each stack closed by a
//               2x2/2 max-pool; channels 64, 128, 256, 512, 512  -> (N, 512, H/32, W/32)
//   avgpool     adaptive to 7x7 (so any H, W >= 32 gives (N, 512, 7, 7))
//   flatten     (in forward)                                        -> (N, 25088)
//   classifier  "0" Linear(25088, 4096) "1" ReLU "2" Dropout
//               "3" Linear(4096, 4096)  "4" ReLU "5" Dropout "6" Linear(4096, K)
//
// Convs per stack (torchvision's configurations A, B, D, E):
//   vgg11 [1, 1, 2, 2, 2]  132,863,336 parameters (1000 classes), with bn 132,868,840
//   vgg13 [2, 2, 2, 2, 2]  133,047,848                            with bn 133,053,736
//   vgg16 [2, 2, 3, 3, 3]  138,357,544                            with bn 138,365,992
//   vgg19 [2, 2, 4, 4, 4]  143,667,240                            with bn 143,678,248
// The features index every layer in order, pools included: in vgg16 the convs are
// features.0, .2, .5, .7, .10, ...; with batch norm they are features.0, .3, .7, ...
// 102M of the parameters are in classifier.0 (25088 x 4096).
#pragma once
#include <vector>

#include "engine/nn/layers.h"

namespace kiln::models {

// x (N, 3, H, W), H, W >= 32 -> logits (N, K)
class VGG : public nn::Module {
 public:
  // convs_per_stage: the number of 3x3 convs before each of the five pools.
  VGG(const std::vector<int>& convs_per_stage, bool batch_norm, int64_t num_classes, double dropout = 0.5);
  std::string type_name() const override { return "VGG"; }
  // The classifier; models::reset_head replaces its weights for a new class count.
  std::shared_ptr<nn::Linear> head() const;

  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<nn::Sequential> classifier;

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// Built and initialised as torchvision does (kaiming-normal fan-out convs with zero
// bias, BN 1/0, Linear N(0, 0.01^2) with zero bias). depth is 11, 13, 16 or 19.
std::shared_ptr<VGG> make_vgg(int depth, bool batch_norm, int64_t num_classes, double dropout = 0.5);

}  // namespace kiln::models
