// A plain classification training loop: shuffle, normalise a uint8 batch, forward,
// cross-entropy, backward, SGD step; evaluate on a held-out set after each epoch.
// It is the loop that `kiln demo` runs; the full `kiln train` (augmentation,
// schedulers, checkpoints) builds on the same pieces.
#pragma once
#include <functional>
#include <vector>

#include "data/dataset.h"
#include "engine/nn/module.h"

namespace kiln::train {

struct Normalization {
  std::vector<double> mean = {0.5};  // per channel, in [0, 1] units
  std::vector<double> std = {0.5};
};

struct ClassifierConfig {
  int epochs = 3;
  int64_t batch_size = 64;
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool cosine_schedule = true;  // lr * (1 + cos(pi * t)) / 2 over all steps
  Device device = Device::cpu();
  uint64_t seed = 0;
  bool progress = true;
  Normalization normalization;
};

struct EpochResult {
  int epoch = 0;
  double train_loss = 0, train_accuracy = 0;
  double eval_loss = 0, eval_accuracy = 0;
  double seconds = 0, images_per_second = 0;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t count = 0;
};

// u8 (B, C, H, W) images -> f32 ((x / 255 - mean_c) / std_c) on `device`.
Tensor normalize_images(const Tensor& images_u8, const Normalization& normalization, const Device& device);

EvalResult evaluate(nn::Module& model, const data::Dataset& dataset, const ClassifierConfig& config);

std::vector<EpochResult> train_classifier(nn::Module& model, const data::Dataset& train_set,
                                          const data::Dataset& eval_set, const ClassifierConfig& config,
                                          const std::function<void(const EpochResult&)>& on_epoch = {});

}  // namespace kiln::train
