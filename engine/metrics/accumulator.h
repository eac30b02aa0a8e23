// MetricAccumulator: gathers one evaluation's predictions batch by batch, then
// builds the ClassificationReport (engine/metrics/classification.h) at the end.
//
//   MetricAccumulator metrics(10);
//   for each batch:  metrics.add(logits.to(Device::cpu()), labels.to(Device::cpu()));
//   std::cout << metrics.report(class_names).to_table();
//
// add() turns each row of logits into probabilities with a softmax computed in
// double on the host (subtracting the row maximum first, so large logits do not
// overflow), and keeps them with the labels. ROC curves need every score of the
// whole set, so the accumulator holds N*K doubles: 10,000 images x 10 classes is
// 800 KB. The tensors must already be on the CPU: like item(), the accumulator
// never copies from a GPU behind your back (see engine/tensor/tensor.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/metrics/classification.h"
#include "engine/tensor/tensor.h"

namespace kiln::metrics {

// Softmax of each row of logits (N, K) in double: p_k = e^(x_k - m) / sum_j e^(x_j - m), m = max_j x_j.
std::vector<double> softmax_rows(const std::vector<double>& logits, int64_t num_classes);

class MetricAccumulator {
 public:
  explicit MetricAccumulator(int64_t num_classes);

  // logits: (N, K) any floating dtype, CPU; labels: (N) integer or floating class
  // indices, CPU. Throws naming the tensor when a shape, device or label is wrong.
  void add(const Tensor& logits, const Tensor& labels);
  // As add(), for scores that already are probabilities (stored as given).
  void add_probabilities(const std::vector<double>& probabilities, const std::vector<int64_t>& labels);

  ClassificationReport report(const std::vector<std::string>& class_names = {},
                              const std::vector<int>& top_ks = {1, 5}) const;

  int64_t count() const { return static_cast<int64_t>(labels_.size()); }
  int64_t num_classes() const { return num_classes_; }
  const std::vector<double>& probabilities() const { return probabilities_; }  // (count, K)
  const std::vector<int64_t>& labels() const { return labels_; }               // (count)
  void reset();

 private:
  int64_t num_classes_;
  std::vector<double> probabilities_;  // (count, K) row-major
  std::vector<int64_t> labels_;        // (count)
};

}  // namespace kiln::metrics
