// cnn5: the configurable five-block CNN a course trains from scratch.
//
//   block i (i = 1..5):  conv k_i x k_i (filters m_i, padding same|valid)
//                        -> [batch norm] -> activation -> max-pool 2x2 -> [dropout, if "conv"]
//   head:                flatten -> dense (n units) -> activation -> [dropout] -> linear (classes)
//
// Every knob a course sweeps is a field: filters per layer (a list, or a base with
// an organisation: same 32-32-32-32-32, double 32-64-128-256-512, half 512-...-32),
// kernel sizes, activation, dense units, batch norm, dropout p and where, padding,
// and the input size (any size that survives five 2x2 poolings).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/nn/layers.h"

namespace kiln::models {

struct Cnn5Config {
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  int64_t input_size = 96;           // H = W of the input
  std::vector<int64_t> filters = {32, 64, 128, 256, 512};
  std::vector<int> kernel_sizes = {3, 3, 3, 3, 3};
  Activation activation = Activation::relu;
  int64_t dense_units = 256;
  bool batch_norm = true;
  double dropout = 0.2;
  std::string dropout_where = "dense";  // dense | conv | both
  std::string padding = "same";         // same (k/2) | valid (0)

  // The filter list for a base count and an organisation: same | double | half.
  static std::vector<int64_t> organise_filters(int64_t base, const std::string& organisation);
  std::string to_string() const;

  // The configuration as JSON (saved in checkpoints, so `kiln eval` can rebuild the
  // net); from_json throws naming a missing or mistyped key.
  nlohmann::json to_json() const;
  static Cnn5Config from_json(const nlohmann::json& json);
};

// Builds the network as a Sequential: children "block1".."block5", then "head".
std::shared_ptr<nn::Sequential> make_cnn5(const Cnn5Config& config);

// Closed-form counts used by `kiln summary` tests: parameters of the whole net.
int64_t cnn5_parameter_count(const Cnn5Config& config);

}  // namespace kiln::models
