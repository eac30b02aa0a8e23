// Loading a model back for inference, from either source a user has:
//
//   a `kiln train` checkpoint  its config says how to build it (architecture, classes,
//                              input size, normalisation, how images were fitted), its
//                              class names come with it;
//   --arch A --pretrained F    a zoo model as an ONNX file or `kiln import` safetensors
//                              has it (e.g. an ImageNet backbone with its 1000-way head),
//                              evaluated the way torchvision evaluates ImageNet models:
//                              resize to size / 0.875 (224 -> 256), centre crop, ImageNet
//                              mean and std; class names from --class-names.
//
// Used by `kiln eval`, `kiln predict` and `kiln visualize`.
#pragma once
#include <string>
#include <vector>

#include "data/image_io.h"
#include "report/run_folder.h"
#include "tools/data_options.h"
#include "tools/model_options.h"
#include "weights/checkpoint.h"

namespace kiln::tools {

struct LoadedRun {
  BuiltModel model;
  Checkpoint checkpoint;
  std::string fit = "crop";  // how the run fitted images to the input size
};

// Throws naming the file when it is not a kiln training checkpoint.
LoadedRun load_run(const std::string& checkpoint_path, const Device& device);

// The data options that reproduce a run's splits as training made them: the run's data
// source (or `data_override`), test data and channels, the model's input size and fit,
// and the run folder's split.json. `kiln report RUN` and a sweep's figures use it.
DataOptions run_data_options(const report::RunRecord& record, const LoadedRun& run, const std::string& run_dir,
                             const std::string& data_override, const std::string& cache_dir);

// What a command was given to find its model and images.
struct InferenceSource {
  std::string command;                  // "predict", "visualize": for error messages
  std::vector<std::string> positional;  // [CHECKPOINT] then images (no checkpoint with --pretrained)
  std::string arch, pretrained, class_names_file;
  int64_t size = 224;                   // input size for --pretrained
  std::string device = "auto";
};

// A model ready for inference (eval mode, on its device) and how images are prepared for it.
struct InferenceModel {
  std::shared_ptr<nn::Module> module;
  augment::AugmentParams image;  // input size, mean, std
  data::Fit fit = data::Fit::crop;
  // Fit to this size first, then take the centre out_size square (torchvision's
  // Resize(256) + CenterCrop(224) for ImageNet models); equal to out_size for a run.
  int64_t resize = 0;
  std::vector<std::string> class_names;  // may be empty (then classes print as numbers)
  Device device = Device::cpu();
  std::vector<std::string> images;  // the positional arguments after the checkpoint
  std::string description;          // one line for the terminal
  // A multi-label checkpoint's config["multi_label"] (loss, decision rule); null otherwise.
  nlohmann::json multi_label;
};

InferenceModel load_inference_model(const InferenceSource& source);

// u8 (N, C, S, S): each file fitted to m.resize, then its centre S x S square.
Tensor load_images(const InferenceModel& m, const std::vector<std::string>& files);

// "258 Samoyed" (or "258" without class names).
std::string class_label(const InferenceModel& m, int64_t k);

// The non-empty lines of a text file (class names, one per line); throws naming it.
std::vector<std::string> read_class_names(const std::string& path, const std::string& command);

}  // namespace kiln::tools
