// Multi-label training: each image carries any number of the K labels, so the model
// answers K independent yes/no questions (a sigmoid per logit, docs/multilabel.md).
//
//   loss "bce":   binary_cross_entropy_with_logits, mean over N*K, with an optional
//                 pos_weight (K) that weighs each class's positives up;
//   loss "focal": sigmoid_focal_loss (Lin et al.), mean over N*K, gamma and alpha.
// pos_weight "auto" is negatives/positives of each class on the training split,
// capped (a class with 3 positives in 10,000 images would otherwise get 3,332).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "engine/metrics/multilabel.h"
#include "engine/tensor/tensor.h"

namespace kiln::train {

struct MultiLabelSetup {
  bool enabled = false;
  std::string loss = "bce";  // bce | focal
  double focal_gamma = 2.0, focal_alpha = 0.25;
  std::vector<double> pos_weight;  // (K) for bce, or empty for all ones
  // The decisions behind the per-epoch validation F1 (fixed: tuning happens once,
  // after training, on the best checkpoint).
  metrics::DecisionRule rule;

  // The mean loss of logits (N, K) f32 against multi-hot targets (N, K) f32, on their device.
  Tensor loss_of(const Tensor& logits, const Tensor& targets) const;
  std::string describe() const;  // "sigmoid + BCE with pos_weight", ...
  nlohmann::json to_json() const;
  // From a checkpoint's config["multi_label"] (enabled).
  static MultiLabelSetup from_json(const nlohmann::json& j);

 private:
  // pos_weight as an f32 tensor on the last device asked for: uploaded once, not every
  // step (a copy from pageable host memory would make each step wait for the device).
  mutable Tensor pos_weight_tensor_;
};

// "bce", "focal", "focal:gamma=2,alpha=0.25" (either key may be left out) into `setup`.
void parse_loss_spec(const std::string& spec, MultiLabelSetup& setup);

// negatives / positives of each class over `targets` (N, K), capped at `cap`; a class
// with no positives gets `cap`.
std::vector<double> auto_pos_weight(const Tensor& targets, double cap = 100.0);
// A JSON list of K numbers, or an object {"class name": weight} naming every class.
std::vector<double> read_pos_weight_file(const std::string& path, const std::vector<std::string>& class_names);

// The multi-hot (N, K) f32 targets of a dataset: its own, or one-hot rows built from
// its single labels (a CSV where no row happens to list two labels).
Tensor multi_hot_targets(const data::Dataset& dataset);
// The same targets with the columns in `model_classes` order (a test set may lack a
// class, or list them differently). Throws naming `source` and the label when the
// data has a label the model was not trained on.
Tensor targets_for_classes(const data::Dataset& dataset, const std::vector<std::string>& model_classes);

// Probabilities (N, K) in double from logits (N, K) f32 on the host: sigmoid per element.
std::vector<double> sigmoid_probabilities(const Tensor& logits);
std::vector<int> targets_as_ints(const Tensor& targets);

}  // namespace kiln::train
