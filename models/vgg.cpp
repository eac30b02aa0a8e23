#include "models/vgg.h"

#include <map>

#include "engine/ops/shape_ops.h"
#include "models/blocks.h"
#include "models/registry.h"

namespace kiln::models {

namespace {

// torchvision's cfgs "A", "B", "D", "E": convs per stage, by depth (convs + 3 linears).
const std::map<int, std::vector<int>>& vgg_configurations() {
  static const std::map<int, std::vector<int>> configurations = {
      {11, {1, 1, 2, 2, 2}}, {13, {2, 2, 2, 2, 2}}, {16, {2, 2, 3, 3, 3}}, {19, {2, 2, 4, 4, 4}}};
  return configurations;
}

}  // namespace

VGG::VGG(const std::vector<int>& convs_per_stage, bool batch_norm, int64_t num_classes, double dropout) {
  KILN_CHECK(convs_per_stage.size() == 5, "VGG: expected 5 stages, got ", convs_per_stage.size());
  KILN_CHECK(num_classes >= 1, "VGG: num_classes must be at least 1, got ", num_classes);
  const int64_t widths[5] = {64, 128, 256, 512, 512};
  // One flat Sequential, pools included, so the indices are torchvision's.
  features = register_module("features", std::make_shared<nn::Sequential>());
  int64_t channels = 3;
  for (int stage = 0; stage < 5; ++stage) {
    for (int i = 0; i < convs_per_stage[stage]; ++i) {
      // With batch norm the conv keeps its bias anyway: torchvision's make_layers does.
      features->add(std::make_shared<nn::Conv2d>(channels, widths[stage], 3, 1, 1));
      if (batch_norm) features->add(std::make_shared<nn::BatchNorm>(widths[stage]));
      features->add(std::make_shared<nn::ActivationLayer>(Activation::relu));
      channels = widths[stage];
    }
    features->add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}));  // 2x2, stride 2
  }
  avgpool = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(7, 7));
  classifier = register_module("classifier", std::make_shared<nn::Sequential>());
  classifier->add(std::make_shared<nn::Linear>(512 * 7 * 7, 4096))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::Dropout>(dropout, 0x5667'0002))
      .add(std::make_shared<nn::Linear>(4096, 4096))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::Dropout>(dropout, 0x5667'0005))
      .add(std::make_shared<nn::Linear>(4096, num_classes));
}

Tensor VGG::forward_impl(const Tensor& x) {
  KILN_CHECK(x.dim() == 4 && x.shape()[1] == 3, "VGG: input must be (N, 3, H, W), got ", x.shape());
  const Tensor h = avgpool->forward(features->forward(x));  // (N, 512, 7, 7)
  return classifier->forward(flatten(h, 1));                // (N, 25088) -> (N, K)
}

std::shared_ptr<nn::Linear> VGG::head() const { return std::dynamic_pointer_cast<nn::Linear>(classifier->child("6")); }

std::shared_ptr<VGG> make_vgg(int depth, bool batch_norm, int64_t num_classes, double dropout) {
  const auto found = vgg_configurations().find(depth);
  KILN_CHECK(found != vgg_configurations().end(), "VGG: depth must be 11, 13, 16 or 19, got ", depth);
  auto net = std::make_shared<VGG>(found->second, batch_norm, num_classes, dropout);
  init_torchvision(*net, LinearInit::normal_001);
  return net;
}

void register_vgg_models() {
  for (const auto& [depth, convs] : vgg_configurations()) {
    for (const bool batch_norm : {false, true}) {
      const std::string name = "vgg" + std::to_string(depth) + (batch_norm ? "_bn" : "");
      const int d = depth;
      register_model({name, str("VGG-", depth, batch_norm ? " with batch norm" : "", ", 3x3 convs, 4096-4096 head"),
                      [name, d, batch_norm](int64_t num_classes, const ModelOptions& options) -> nn::ModulePtr {
                        KILN_CHECK(options.width_multiplier == 1.0, name, ": width_multiplier must be 1.0 (only ",
                                   "mobilenet_v2 has one), got ", options.width_multiplier);
                        return make_vgg(d, batch_norm, num_classes, options.dropout < 0 ? 0.5 : options.dropout);
                      },
                      "classifier.6", LinearInit::normal_001, {"features", "classifier"}});
    }
  }
}

}  // namespace kiln::models
