// Training checkpoints: one safetensors file readable by Python's safetensors.
//
//   tensors   "model.<name>"      every parameter and buffer (state_dict names)
//             "optim.<key>"       optimizer state (momentum buffers, Adam moments, step)
//   metadata  "kiln.format"       "checkpoint-1"
//             "kiln.config"       the run's resolved configuration, as JSON
//             "kiln.classes"      class names, as a JSON list
//             "kiln.progress"     {"epoch": e, "step": s, "best_metric": m, ...} as JSON
//             "kiln.extra_state"  module counters (dropout draws), as JSON
//
// From Python: safetensors.torch.load_file(path) gives the tensors, and
// safe_open(path, "pt").metadata() the rest.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace kiln {

struct Checkpoint {
  std::map<std::string, Tensor> model;      // state_dict
  std::map<std::string, Tensor> optimizer;  // optimizer state, may be empty
  nlohmann::json config = nlohmann::json::object();
  std::vector<std::string> class_names;
  nlohmann::json progress = nlohmann::json::object();
  nlohmann::json extra_state = nlohmann::json::object();
};

// Written atomically: a crash mid-save leaves the previous checkpoint intact.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Throws naming the file when it is not a kiln checkpoint (wrong or missing format).
Checkpoint load_checkpoint(const std::string& path);

// The model part of a module, with its extra state, ready to save.
Checkpoint checkpoint_of(const nn::Module& model);
// Loads a checkpoint's model part into `model` (strict: names and shapes must match).
void restore_model(nn::Module& model, const Checkpoint& checkpoint);

}  // namespace kiln
