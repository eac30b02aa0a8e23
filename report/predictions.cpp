// Choosing and captioning the report's prediction thumbnails (report/predictions.h).
#include "report/predictions.h"

#include <algorithm>
#include <cstdio>

#include "engine/core/check.h"
#include "engine/metrics/classification.h"

namespace kiln::report {
namespace {
constexpr int kMaxThumbnailPixels = 192;  // the longer side of a stored thumbnail
}  // namespace

PredictionPicks pick_predictions(const std::vector<double>& probabilities, const std::vector<int64_t>& labels,
                                 int64_t num_classes, size_t max_each) {
  KILN_CHECK(num_classes > 0 && probabilities.size() == labels.size() * static_cast<size_t>(num_classes),
             "pick_predictions: probabilities must be (N, K) = (", labels.size(), ", ", num_classes, "), got ",
             probabilities.size(), " values");
  const std::vector<int64_t> predicted = metrics::predict_classes(probabilities, num_classes);
  std::vector<std::vector<Prediction>> correct_by_class(static_cast<size_t>(num_classes));
  std::vector<Prediction> wrong;
  for (size_t i = 0; i < labels.size(); ++i) {
    KILN_CHECK(labels[i] >= 0 && labels[i] < num_classes, "pick_predictions: label ", labels[i], " of image ", i,
               " is outside [0, ", num_classes, ")");
    Prediction p;
    p.index = static_cast<int64_t>(i);
    p.label = labels[i];
    p.predicted = predicted[i];
    p.probability = probabilities[i * static_cast<size_t>(num_classes) + static_cast<size_t>(p.predicted)];
    (p.predicted == p.label ? correct_by_class[static_cast<size_t>(p.label)] : wrong).push_back(p);
  }

  PredictionPicks picks;
  for (size_t round = 0; picks.correct.size() < max_each; ++round) {
    bool any = false;
    for (const auto& in_class : correct_by_class) {
      if (round >= in_class.size()) continue;
      any = true;
      if (picks.correct.size() < max_each) picks.correct.push_back(in_class[round]);
    }
    if (!any) break;
  }
  std::stable_sort(wrong.begin(), wrong.end(),
                   [](const Prediction& a, const Prediction& b) { return a.probability > b.probability; });
  if (wrong.size() > max_each) wrong.resize(max_each);
  picks.wrong = wrong;
  return picks;
}

RgbImage dataset_image(const data::Dataset& dataset, int64_t index) {
  KILN_CHECK(dataset.images.defined() && dataset.images.dtype() == DType::u8 && dataset.images.dim() == 4,
             "report: dataset '", dataset.source, "' must hold uint8 images (N, C, H, W)");
  const int64_t n = dataset.images.shape()[0], c = dataset.images.shape()[1];
  const int64_t h = dataset.images.shape()[2], w = dataset.images.shape()[3];
  KILN_CHECK(index >= 0 && index < n, "report: image ", index, " is outside the dataset's ", n, " images");
  KILN_CHECK(c == 1 || c == 3, "report: images must have 1 or 3 channels, got ", c);
  const uint8_t* pixels = dataset.images.data<uint8_t>() + index * c * h * w;
  RgbImage image(static_cast<int>(w), static_cast<int>(h));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t at = y * w + x;  // channel planes are h * w apart
      const uint8_t r = pixels[at], g = pixels[(c == 3 ? 1 : 0) * h * w + at], b = pixels[(c == 3 ? 2 : 0) * h * w + at];
      image.set(static_cast<int>(x), static_cast<int>(y), {r, g, b});
    }
  return image;
}

std::vector<CaptionedImage> captioned_predictions(const data::Dataset& dataset, const std::vector<Prediction>& picks,
                                                  const std::vector<std::string>& class_names) {
  auto name = [&](int64_t k) {
    return k >= 0 && k < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(k)]
                                                                   : std::to_string(k);
  };
  std::vector<CaptionedImage> out;
  for (const Prediction& p : picks) {
    char probability[16];
    std::snprintf(probability, sizeof(probability), "%.2f", p.probability);
    CaptionedImage item;
    item.image = dataset_image(dataset, p.index);
    // Shown at about 96 px: larger pictures are shrunk to 2x that (sharp on high-DPI
    // screens), which keeps a report of 224-px photos a few hundred KB, not megabytes.
    const int longer = std::max(item.image.width, item.image.height);
    if (longer > kMaxThumbnailPixels)
      item.image = resize_smooth(item.image, std::max(1, item.image.width * kMaxThumbnailPixels / longer),
                                 std::max(1, item.image.height * kMaxThumbnailPixels / longer));
    item.captions.push_back({"true: " + name(p.label), Rgb{40, 40, 40}});
    item.captions.push_back({"pred: " + name(p.predicted) + " " + probability,
                             p.predicted == p.label ? caption_green : caption_red});
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace kiln::report
