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
//   weighted average: per-class values weighted by support
//   samples average: precision/recall/F1 of each image's label set, then the mean
// These match sklearn.metrics.precision_recall_fscore_support on multi-hot arrays with
// average="micro" / "macro" / "weighted" / "samples" / None and zero_division=0.
//
// Scores that need no threshold (sklearn's definitions; tests/fixtures/multilabel_fixtures.py):
//   average precision of class k: sort by score, one point per distinct score t,
//     AP = sum_t (R_t - R_prev) P_t  (no interpolation; sklearn's average_precision_score);
//     mAP = the mean over the classes that have a positive (a class without positives
//     has no recall; sklearn returns nan for it, kiln leaves it out and says so).
//   label ranking loss: per image, the fraction of (relevant, irrelevant) label pairs
//     with score(irrelevant) >= score(relevant); 0 for an image with no or all labels.
//   coverage error: per image, how many labels score >= its lowest-scoring relevant
//     label (how far down the ranking one must go to cover all true labels); 0 without labels.
// Exact-set scores at the decisions: hamming loss = wrong (image, label) decisions / (N K),
// subset accuracy = images whose predicted set equals the true set / N.
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
  double average_precision = 0;  // NaN when the class has no positive
};

// How a row of probabilities becomes a label set.
//   thresholds: class k is predicted when p >= thresholds[k];
//   top_k > 0: instead, exactly the k most probable classes (the course's "top-2" rule);
//   at_least_one: with thresholds, an image where nothing passes keeps its most probable class.
struct DecisionRule {
  std::vector<double> thresholds;  // (K)
  int64_t top_k = 0;
  bool at_least_one = false;
  std::string describe() const;    // "per-class thresholds", "top-2", "threshold 0.5 + at least one", ...
  nlohmann::json to_json() const;
  static DecisionRule from_json(const nlohmann::json& j);
};

// The multi-hot (N, K) decisions of `rule` on probabilities (N, K).
std::vector<int> decide(const std::vector<double>& probabilities, int64_t num_classes, const DecisionRule& rule);

struct MultilabelReport {
  int64_t count = 0;                             // N
  std::vector<MultilabelClassMetrics> per_class;  // (K)
  AveragedMetrics micro, macro, weighted, samples;
  double mean_average_precision = 0;  // mAP over the classes with a positive
  double hamming_loss = 0, subset_accuracy = 0;
  double label_ranking_loss = 0, coverage_error = 0;
  std::string rule;  // DecisionRule::describe() of the decisions counted
  nlohmann::json to_json() const;
  std::string to_table() const;  // per class P/R/F1/support/AP, then the averages and scores
};

// thresholds: (K); names may be empty ("0", "1", ... are used).
MultilabelReport multilabel_report(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                   int64_t num_classes, const std::vector<double>& thresholds,
                                   std::vector<std::string> class_names = {});
MultilabelReport multilabel_report(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                   int64_t num_classes, const DecisionRule& rule,
                                   std::vector<std::string> class_names = {});

// sklearn's precision_recall_curve for one class: one point per distinct score, from
// the highest score down (recall rising). scores, positives: (N).
struct PrecisionRecallCurve {
  std::vector<double> thresholds, precision, recall;
};
PrecisionRecallCurve precision_recall_curve(const std::vector<double>& scores, const std::vector<int>& positives);
// sum_t (R_t - R_prev) P_t over the curve; NaN when there is no positive.
double average_precision(const std::vector<double>& scores, const std::vector<int>& positives);
double label_ranking_loss(const std::vector<double>& probabilities, const std::vector<int>& targets,
                          int64_t num_classes);
double coverage_error(const std::vector<double>& probabilities, const std::vector<int>& targets, int64_t num_classes);

// For each class, the candidate threshold that maximises that class's F1 on this data.
// candidates: the thresholds to try; empty means every distinct probability of the
// class, which finds the exact maximum (F1 only changes when the threshold crosses a
// score). Among thresholds with the same best F1, the lowest wins: a validation set
// rarely shows the highest positive scores a test set will have, and the lower
// threshold keeps recall on them (sklearn-based tuning recipes do the same). A class
// with no positives has F1 = 0 everywhere: it keeps `no_positive_threshold`, since the
// lowest candidate would predict it for every image. Returns (K) thresholds.
std::vector<double> best_thresholds(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                    int64_t num_classes, const std::vector<double>& candidates = {},
                                    double no_positive_threshold = 0.5);
// The one threshold, shared by every class, with the best micro-F1 on this data (all N·K
// (image, class) decisions pooled). One number fitted on N·K scores instead of K numbers
// fitted on N each: less variance when the probabilities are already calibrated and the
// validation split is small. Ties go to the lowest, as above; data without any positive
// keeps `no_positive_threshold`.
double best_global_threshold(const std::vector<double>& probabilities, const std::vector<int>& targets,
                             int64_t num_classes, const std::vector<double>& candidates = {},
                             double no_positive_threshold = 0.5);
// 0.01, 0.02, ..., 0.99: the grid `--threshold tune` and `tune-global` search.
std::vector<double> threshold_grid();

}  // namespace kiln::metrics
