// report.html of a multi-label `kiln train` run (docs/multilabel.md): one self-contained
// page like the single-label report (report/run_report.h), with
//   - the run table: model, parameters, device, set sizes, loss, decision rule, best
//     epoch, training time, and the test metrics (micro/macro/samples F1, mAP, subset
//     accuracy, hamming loss) next to the 0.5 and top-2 rules;
//   - loss and validation mAP / F1 curves per epoch;
//   - per-class F1 and average-precision bars, and one precision-recall curve per class;
//   - the threshold table (per class: threshold, precision, recall, F1, support, AP);
//   - the label co-occurrence heat map of the training split (diagonal: the class
//     counts; cell (i, j): images carrying both i and j);
//   - test images with their label sets: a predicted true label green, a missed one
//     red, a predicted label the image does not have grey.
// Every chart is also written as a PNG in <run>/figures/.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/metrics/multilabel.h"

namespace kiln::report {

struct MultilabelReportInputs {
  std::string run_dir;
  std::vector<std::string> class_names;  // (K)
  metrics::DecisionRule rule;            // saved with the model
  std::vector<double> test_probabilities;  // (N, K) sigmoid outputs on the test split
  std::vector<int> test_targets;           // (N, K) multi-hot
  std::vector<std::vector<double>> train_cooccurrence;  // (K, K) of the training split (data/class_stats.h)
  const data::Dataset* test_set = nullptr;  // images for the examples (may be null: no examples)
  size_t examples = 24;
};

// The caption lines of one example: "true & predicted" labels green, missed red, extra grey.
std::vector<std::pair<std::string, int>> label_set_captions(const int* truth, const int* predicted,
                                                            const double* probabilities,
                                                            const std::vector<std::string>& names);

// Writes <run_dir>/report.html and figures/*.png; returns the page's path.
std::string write_multilabel_report(const MultilabelReportInputs& inputs);

}  // namespace kiln::report
