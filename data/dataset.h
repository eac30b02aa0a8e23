// An in-memory image classification dataset: uint8 images (N, C, H, W) plus int64
// labels and class names. Readers (IDX, image folders, packs) fill one of these;
// the trainer slices batches out of it.
#pragma once
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln::data {

struct Dataset {
  Tensor images;  // u8 (N, C, H, W), cpu
  Tensor labels;  // i64 (N), cpu; -1 where there is none (a prediction CSV, a multi-label row with no labels)
  Tensor targets;  // f32 (N, K) multi-hot, only for multi-label
  std::vector<std::string> file_names;  // (N) relative to the source folder; empty for IDX
  int64_t skipped = 0;  // unreadable files left out by --skip-bad
  std::vector<std::string> class_names;
  std::string source;  // where it came from, for messages and run reports
  bool labelled = true;  // false for a CSV without labels: it can be predicted, not trained on or scored

  int64_t size() const { return images.defined() ? images.shape()[0] : 0; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

// The rows `indices` of `dataset`, as a new dataset (copies).
Dataset subset(const Dataset& dataset, const std::vector<int64_t>& indices);

// Re-indexes labels and targets to `class_names` (a checkpoint's or the training set's
// classes), by name: a test CSV that lacks some classes, or lists them in another
// order, then lines up with the model's outputs. Throws naming the data set and the
// first class that is not in `class_names` (and listing the known ones).
void align_classes(Dataset& dataset, const std::vector<std::string>& class_names);

// Zero-pads every image by `pad` pixels on each side (28x28 Fashion-MNIST -> 32x32,
// as LeNet did, so that five 2x2 poolings still leave a pixel).
Dataset pad_images(const Dataset& dataset, int64_t pad);

// A seeded, stratified subset: the first `per_class` shuffled samples of each class.
std::vector<int64_t> stratified_indices(const Dataset& dataset, int64_t per_class, uint64_t seed);

}  // namespace kiln::data
