// Multi-label metrics: each image may carry any number of the K labels at once
// (a photo with both "dog" and "grass"), so every class is its own yes/no question.
//
//   probabilities: (N, K) row-major, one independent probability per class (a
//                  sigmoid per logit, not a softmax over the row)
//   targets:       (N, K) multi-hot, 1 where the image has that label, else 0
//   thresholds:    (K), class k is predicted for an image when p[n][k] >= thresholds[k]
//
// Per class k, counting over the N images: TP, FP, FN, then
//   precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN), support = TP+FN,
// with 0/0 = 0 (sklearn's zero_division=0).
//   micro average: sum TP, FP and FN over the classes first, then the same formulas
//                  (every (image, label) decision weighs the same; frequent labels dominate)
//   macro average: plain mean of the K per-class values (every class weighs the same)
// These match sklearn.metrics.precision_recall_fscore_support on multi-hot arrays with
// average="micro" / "macro" / None.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/metrics/classification.h"

namespace kiln::metrics {

struct MultilabelClassMetrics {
  std::string name;
  double threshold = 0.5;
  int64_t true_positives = 0, false_positives = 0, false_negatives = 0;
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;  // images that carry this label (TP + FN)
};

struct MultilabelReport {
  int64_t count = 0;                             // N
  std::vector<MultilabelClassMetrics> per_class;  // (K)
  AveragedMetrics micro, macro;
  nlohmann::json to_json() const;
};

// thresholds: (K); names may be empty ("0", "1", ... are used).
MultilabelReport multilabel_report(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                   int64_t num_classes, const std::vector<double>& thresholds,
                                   std::vector<std::string> class_names = {});

// For each class, the candidate threshold that maximises that class's F1 on this data.
// candidates: the thresholds to try; empty means every distinct probability of the
// class, which finds the exact maximum (F1 only changes when the threshold crosses a
// score). Among thresholds with the same best F1, the highest wins: it predicts the
// fewest labels for the same F1. A class with no positives has F1 = 0 everywhere and
// so gets the highest candidate. Returns (K) thresholds.
std::vector<double> best_thresholds(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                    int64_t num_classes, const std::vector<double>& candidates = {});

}  // namespace kiln::metrics
