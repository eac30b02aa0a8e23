// The test images shown in a run report: a grid of correct and a grid of wrong
// predictions, each thumbnail captioned with its true and predicted class and the
// probability the model gave its prediction.
//
// Which images (pick_predictions), deterministically, so a report regenerated from
// the same checkpoint shows the same pictures:
//   correct  taken class by class in turn (round robin over the true classes, each
//            class's images in dataset order), so every class that has a correct
//            prediction appears before any class appears twice;
//   wrong    the most confident mistakes first (highest predicted probability; ties
//            in dataset order): the errors a teacher most wants to discuss.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "report/charts.h"
#include "report/image.h"

namespace kiln::report {

struct Prediction {
  int64_t index = 0;      // row in the dataset
  int64_t label = 0;      // true class
  int64_t predicted = 0;  // argmax of the probabilities (ties to the lower class)
  double probability = 0; // of the predicted class
};

struct PredictionPicks {
  std::vector<Prediction> correct, wrong;  // at most max_each of each, in display order
};

// probabilities: (N, K) row-major; labels: (N).
PredictionPicks pick_predictions(const std::vector<double>& probabilities, const std::vector<int64_t>& labels,
                                 int64_t num_classes, size_t max_each);

// Image `index` of a uint8 (N, C, H, W) dataset as RGB (one channel is repeated as grey).
RgbImage dataset_image(const data::Dataset& dataset, int64_t index);

// Thumbnails with two caption lines: "true: cat" and "pred: dog 0.87" (green when
// correct, red when wrong). Images longer than 192 px are shrunk to 192 (smoothly).
std::vector<CaptionedImage> captioned_predictions(const data::Dataset& dataset, const std::vector<Prediction>& picks,
                                                  const std::vector<std::string>& class_names);

}  // namespace kiln::report
