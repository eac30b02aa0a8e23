// The resnet_custom command-line flags (`kiln train --model resnet_custom`,
// `kiln summary --model resnet_custom`), so the same flags mean the same network:
//
//   --blocks basic|bottleneck   --depths 2,2,2,2   --widths 64,128,256,512
//   --stem 3x3|7x7   --separable   --preact
//
// The defaults are models::ResNetCustomConfig's; to_config() checks them and names
// the flag in every error. Classes and input channels come from the data.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "models/resnet_custom.h"

namespace kiln::tools {

struct ResNetCustomOptions {
  std::string blocks = "basic";
  std::vector<int> depths = {2, 2, 2, 2};
  std::vector<int64_t> widths = {64, 128, 256, 512};
  std::string stem = "3x3";
  bool separable = false;
  bool preact = false;
};

void add_resnet_custom_options(CLI::App* app, ResNetCustomOptions& options);

// Checks the options (naming the flag) and builds the config for the data's
// input channels and classes.
models::ResNetCustomConfig to_config(const ResNetCustomOptions& options, int64_t in_channels, int64_t num_classes);

}  // namespace kiln::tools
