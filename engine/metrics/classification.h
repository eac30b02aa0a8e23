// Classification metrics, computed on the host in double from scores and labels.
//
//   scores: (N, K) row-major, one row per image: probabilities or logits (any score
//           where larger means "more likely that class")
//   labels: (N), the true class of each image, in [0, K)
//
// What is computed (docs/metrics.md gives every formula with a worked example):
//   - top-1 and top-k accuracy. The predicted class is the argmax of a row; ties go
//     to the lower class index (as numpy/torch argmax do), and the same tie rule ranks
//     classes for top-k, so top-1 accuracy is exactly the accuracy of the argmax.
//   - the confusion matrix C (K x K): C[t][p] = images of true class t predicted p.
//     Rows are true classes, columns predicted classes (sklearn's convention).
//   - per class: precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R), support
//     = TP+FN. A 0/0 is 0 (sklearn's zero_division=0), e.g. a class never predicted.
//   - macro averages (plain mean over all K classes) and weighted averages (mean
//     weighted by support). All K classes count, also those absent from the labels
//     and the predictions: sklearn with labels=range(K).
//   - one-vs-rest ROC curve per class from column k of the scores, with sklearn's
//     roc_curve semantics at drop_intermediate=False: one point per distinct score
//     (tied scores move together, giving a diagonal step), preceded by (0, 0) at
//     threshold +inf. AUC by the trapezoid rule. A class with no positives or no
//     negatives has no defined curve: its AUC is NaN and the macro (and weighted) AUC
//     average only the classes where it is defined.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::metrics {

// One-vs-rest ROC curve of one class. All three vectors have the same length P
// (distinct scores + 1); point i is (fpr[i], tpr[i]) for "predict positive when
// score >= thresholds[i]". thresholds is decreasing and starts at +inf.
struct RocCurve {
  std::vector<double> fpr, tpr, thresholds;  // each (P)
  double auc = 0;                            // NaN when the class has no positives or no negatives
};

struct ClassMetrics {
  std::string name;
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;  // images whose true class is this one
};

struct AveragedMetrics {
  double precision = 0, recall = 0, f1 = 0;
};

struct ClassificationReport {
  int64_t count = 0;                                  // N
  std::vector<std::string> class_names;               // (K)
  double accuracy = 0;                                // top-1
  std::map<int, double> top_k_accuracy;               // k -> accuracy, for each requested k <= K
  std::vector<std::vector<int64_t>> confusion_matrix;  // (K, K): [true][predicted]
  std::vector<ClassMetrics> per_class;                // (K)
  AveragedMetrics macro, weighted;
  std::vector<RocCurve> roc;  // (K), one-vs-rest
  double macro_auc = 0;       // mean of the defined per-class AUCs (NaN if none is)
  double weighted_auc = 0;    // the same, weighted by support (sklearn's average="weighted")

  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  // Every field; NaN and +inf (undefined AUC, the first ROC threshold) become null.
  nlohmann::json to_json() const;
  // Writes <dir>/per_class.csv, <dir>/confusion_matrix.csv and <dir>/roc_<class>.csv,
  // each atomically (weights/atomic_file.h). The folder is created if missing.
  void write_csv(const std::string& dir) const;
  // A fixed-width text table for the terminal: per-class rows, averages, accuracies.
  std::string to_table() const;
};

// ---- the pieces (each usable alone; the report calls them)

// (N) predicted classes: argmax of each row of scores (N, K), ties to the lower index.
std::vector<int64_t> predict_classes(const std::vector<double>& scores, int64_t num_classes);

// Fraction of rows whose true class is among the k best-ranked classes. Ranking is by
// score, ties broken toward the lower class index (so k = 1 matches predict_classes).
double top_k_accuracy(const std::vector<double>& scores, const std::vector<int64_t>& labels, int64_t num_classes,
                      int k);

// (K, K) counts, [true][predicted].
std::vector<std::vector<int64_t>> confusion_matrix(const std::vector<int64_t>& labels,
                                                   const std::vector<int64_t>& predictions, int64_t num_classes);

// Per-class precision, recall, F1 and support read off a confusion matrix (K, K).
std::vector<ClassMetrics> per_class_metrics(const std::vector<std::vector<int64_t>>& confusion,
                                            const std::vector<std::string>& class_names);
AveragedMetrics macro_average(const std::vector<ClassMetrics>& per_class);
AveragedMetrics weighted_average(const std::vector<ClassMetrics>& per_class);

// ROC curve for binary truth (N) and scores (N): positives are truth[i] == true.
RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& truth);
// Area under a curve given as points sorted by x, by the trapezoid rule.
double trapezoid_area(const std::vector<double>& x, const std::vector<double>& y);

// Everything at once. class_names may be empty ("0", "1", ... are used); top_ks lists
// the k of top-k accuracy to report (k > K is skipped: it would always be 1).
ClassificationReport classification_report(const std::vector<double>& scores, const std::vector<int64_t>& labels,
                                           int64_t num_classes, std::vector<std::string> class_names = {},
                                           const std::vector<int>& top_ks = {1, 5});

}  // namespace kiln::metrics
