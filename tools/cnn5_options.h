// The cnn5 command-line flags, shared by every subcommand that builds a cnn5
// (`kiln summary`, and `kiln train` later), so the same flags mean the same network:
//
//   --filters 32 --filter-org same|double|half   or   --filter-list 16,32,64,128,256
//   --kernel-sizes 3,3,3,3,3 (or one number for all five)   --activation relu|...|elu
//   --dense 256   --batch-norm on|off   --dropout 0.2 --dropout-where dense|conv|both
//   --padding same|valid   --classes 10   --input 3x96x96
//
// The defaults are models::Cnn5Config's. Parsing only stores strings and numbers;
// to_config() checks them and names the flag in every error.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "engine/core/shape.h"
#include "models/cnn5.h"

namespace kiln::tools {

struct Cnn5Options {
  int64_t filters = 32;                 // base filter count for --filter-org
  std::string filter_org = "double";    // same | double | half
  std::vector<int64_t> filter_list;     // five counts; overrides --filters/--filter-org
  std::vector<int> kernel_sizes = {3};  // one for all blocks, or five
  std::string activation = "relu";
  int64_t dense = 256;
  std::string batch_norm = "on";
  double dropout = 0.2;
  std::string dropout_where = "dense";
  std::string padding = "same";
  int64_t classes = 10;
  std::string input = "3x96x96";  // C x H x W, with H == W
};

// Declares the architecture flags on `app`, writing into `options` (which must
// outlive parsing). The number of classes and the input shape come from the data in
// `kiln train`; commands without data (`kiln summary`) add them as flags with
// add_cnn5_shape_options().
void add_cnn5_options(CLI::App* app, Cnn5Options& options);
void add_cnn5_shape_options(CLI::App* app, Cnn5Options& options);  // --classes, --input

// "3x256x256" -> (3, 256, 256). Throws naming the flag on anything else.
Shape parse_input_shape(const std::string& text, const char* flag = "--input");

// Checks the options and builds the config (filters expanded, kernel sizes replicated).
models::Cnn5Config to_config(const Cnn5Options& options);

}  // namespace kiln::tools
