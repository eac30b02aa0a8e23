// Loading a trained model back from a `kiln train` checkpoint: the checkpoint's
// config says how to build it (architecture, classes, input size, normalisation),
// then its weights are loaded. Used by `kiln eval` and `kiln predict`.
#pragma once
#include <string>

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

}  // namespace kiln::tools
