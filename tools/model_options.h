// The model flags of `kiln train` (and the compare/eval commands), and building the
// model they describe for a data set:
//   --model cnn5 [cnn5 flags]     the course's 5-block CNN from scratch
//   --model resnet_custom [--blocks --depths --widths --stem --separable --preact]
//                                 a configurable ResNet from scratch (models/resnet_custom.h)
//   --model resnet18|...|vgg16_bn|mobilenet_v2 [--pretrained FILE]
//                                 the model zoo; FILE is an ONNX file, the output of
//                                 `kiln import`, or a `kiln train` checkpoint of the same
//                                 architecture; the head is replaced for the data's classes
//   --finetune all|head|from:STAGE  what trains: everything, only the classifier, or
//                                 the stages from STAGE on (e.g. from:layer3 for ResNet)
//   --freeze-bn                   batch norm keeps its running statistics (eval-mode BN)
//   --max-params 26M              refuse to build a bigger model, naming its count and
//                                 its five largest layers (a benchmark's parameter cap)
// Classes and input size come from the data. cnn5 normalises with the training
// images' per-channel mean and std; the zoo with ImageNet's, as it was pretrained.
// build_model_from_config() rebuilds the same model from the JSON saved in a
// checkpoint, which is how `kiln eval` and `kiln predict` load a run's model.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "data/dataset.h"
#include "engine/augment/augment.h"
#include "engine/nn/module.h"
#include "tools/cnn5_options.h"
#include "tools/resnet_custom_options.h"

namespace kiln::tools {

struct ModelOptions {
  std::string arch = "cnn5";
  Cnn5Options cnn5;
  ResNetCustomOptions resnet_custom;
  std::string pretrained;
  std::string finetune = "all";
  bool freeze_bn = false;
  std::string max_params;  // "" (no cap), or a count such as 26M
};

void add_model_options(CLI::App* app, ModelOptions& options);

struct BuiltModel {
  std::shared_ptr<nn::Module> module;
  nlohmann::json config;        // {"arch": "cnn5", "cnn5": {...}}: enough to build it again
  augment::AugmentParams image;  // input size and normalisation the model expects
  std::string description;       // one line for the terminal
};

BuiltModel build_model(const ModelOptions& options, const data::Dataset& train_set);

// A zoo model with pretrained weights as the file has them (its own head and
// classes): FILE is an .onnx file or a `kiln import` .safetensors. build_model
// replaces the head for the data; `kiln visualize` looks at the model as it is.
struct PretrainedModel {
  std::shared_ptr<nn::Module> module;
  std::string description;  // "weights from FILE", or the ONNX import summary
  // A `kiln train` checkpoint's classes, in its head's order (empty for ONNX files and
  // plain state dicts): a run on the same classes keeps the trained head.
  std::vector<std::string> class_names;
};
PretrainedModel load_pretrained_model(const std::string& arch, const std::string& path);

// The normalisation ImageNet-pretrained models expect (per channel, [0, 1] units).
extern const std::vector<double> kImageNetMean, kImageNetStd;
// From a checkpoint's config ({"model": ..., "image": {...}, "data": {...}}).
BuiltModel build_model_from_config(const nlohmann::json& run_config);

// "auto" picks cuda:0 when a GPU is visible, else the CPU.
Device resolve_device(const std::string& text);

// Per-channel mean and std of a uint8 image set, in [0, 1] units.
void pixel_statistics(const data::Dataset& dataset, std::vector<double>& mean, std::vector<double>& std);

}  // namespace kiln::tools
