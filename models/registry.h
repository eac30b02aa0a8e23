// The model registry: every architecture by its torchvision name.
//
//   auto net = models::make_model("resnet50", 10);          // ResNet-50, 10 classes
//   models::reset_head(*net, "resnet50", 37);                // fresh fc for 37 classes
//   for (auto& stage : models::stage_names("resnet50")) ...  // "conv1", "bn1", "layer1", ...
//
// Each model file registers its own entries (models/resnet.cpp registers resnet18..101),
// so adding an architecture touches that file and one line in registry.cpp, never a
// chain of ifs. An entry says how to build the model, which Linear is its head, and
// the names of its stages (the prefixes a fine-tuning strategy freezes or unfreezes).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/optim/optimizer.h"
#include "models/blocks.h"

namespace kiln::models {

struct ModelOptions {
  double width_multiplier = 1.0;  // MobileNetV2's alpha; other models require 1.0
  double dropout = -1;            // -1: the model's default (VGG 0.5, MobileNetV2 0.2); ResNet has none
};

struct ModelEntry {
  std::string name;                  // "resnet18"
  std::string description;           // one line for `kiln models` and error messages
  std::function<std::shared_ptr<nn::Module>(int64_t num_classes, const ModelOptions& options)> build;
  std::string head;                  // dotted path of the final Linear: "fc", "classifier.6"
  LinearInit head_init;              // how the model initialises that Linear
  std::vector<std::string> stages;   // fine-tuning stages, input to output
};

// Adds an entry; registering a name twice is an error.
void register_model(ModelEntry entry);
// The entry for `name`; an unknown name is an error listing the valid names.
const ModelEntry& model_entry(const std::string& name);

// Builds `name` for num_classes outputs, initialised as torchvision initialises it.
std::shared_ptr<nn::Module> make_model(const std::string& name, int64_t num_classes, const ModelOptions& options = {});
// Every registered name, sorted.
std::vector<std::string> model_names();
// The stage names of `arch` (ResNet: conv1 bn1 layer1..layer4 fc; VGG: features
// classifier; MobileNetV2: features.0 .. features.18 classifier).
std::vector<std::string> stage_names(const std::string& arch);
// Replaces the final Linear (fc, classifier.6 or classifier.1) with a freshly
// initialised one for num_classes outputs, on the old head's device and dtype, for
// fine-tuning. The rest of the model is untouched.
void reset_head(nn::Module& model, const std::string& arch, int64_t num_classes);

// Discriminative learning rates for fine-tuning (as in ULMFiT / fastai): the head
// learns at `lr`, and each stage before it at `decay` times the lr of the stage
// after it (stage i of n gets lr * decay^(n - 1 - i)). Trainable parameters only;
// within each stage, 1-D parameters (biases, norms) get no weight decay. decay = 1
// gives every stage the same lr.
std::vector<optim::ParamGroup> stage_param_groups(const nn::Module& model, const std::string& arch, double lr,
                                                  double weight_decay, double decay);

// A fine-tuning strategy (`kiln train --finetune`): "all" trains everything; "head"
// freezes everything but the final Linear; "from:STAGE" freezes the stages before
// STAGE (e.g. "from:layer3"). Freezing sets requires_grad = false, so the frozen
// part records no autograd nodes and keeps no activations for a backward pass
// (docs/models.md measures it). An unknown strategy or stage is an error listing
// the stages.
void apply_finetune(nn::Module& model, const std::string& arch, const std::string& strategy);

// Registration hooks, one per model file (defined there). registry.cpp calls them on
// first use: a static initialiser in a file of the kiln_engine static library would be
// dropped by the linker whenever nothing else references that file.
void register_resnet_models();
void register_vgg_models();
void register_mobilenet_v2_models();

}  // namespace kiln::models
