#include "engine/metrics/accumulator.h"

#include <algorithm>
#include <cmath>

#include "engine/core/check.h"

namespace kiln::metrics {

std::vector<double> softmax_rows(const std::vector<double>& logits, int64_t num_classes) {
  KILN_CHECK(num_classes > 0 && static_cast<int64_t>(logits.size()) % num_classes == 0,
             "softmax_rows: logits must be (N, K) with K = ", num_classes, ", got ", logits.size(), " values");
  std::vector<double> out(logits.size());
  for (size_t start = 0; start < logits.size(); start += static_cast<size_t>(num_classes)) {
    const double* row = logits.data() + start;
    const double m = *std::max_element(row, row + num_classes);
    double sum = 0;
    for (int64_t k = 0; k < num_classes; ++k) sum += out[start + k] = std::exp(row[k] - m);
    for (int64_t k = 0; k < num_classes; ++k) out[start + k] /= sum;
  }
  return out;
}

MetricAccumulator::MetricAccumulator(int64_t num_classes) : num_classes_(num_classes) {
  KILN_CHECK(num_classes > 0, "MetricAccumulator: number of classes must be positive, got ", num_classes);
}

void MetricAccumulator::add(const Tensor& logits, const Tensor& labels) {
  KILN_CHECK(logits.device().is_cpu(), "MetricAccumulator::add: logits are on ", logits.device().to_string(),
             "; copy them with .to(Device::cpu()) first (metrics are computed on the host)");
  KILN_CHECK(labels.device().is_cpu(), "MetricAccumulator::add: labels are on ", labels.device().to_string(),
             "; copy them with .to(Device::cpu()) first (metrics are computed on the host)");
  KILN_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "MetricAccumulator::add: logits must be (N, K) with K = ",
             num_classes_, ", got ", logits.shape());
  KILN_CHECK(is_floating(logits.dtype()), "MetricAccumulator::add: logits must be floating point, got ",
             dtype_name(logits.dtype()));
  KILN_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), "MetricAccumulator::add: labels must be (N) = (",
             logits.size(0), "), got ", labels.shape());
  std::vector<int64_t> batch_labels;
  for (double v : labels.to_vector()) {
    KILN_CHECK(v == std::floor(v), "MetricAccumulator::add: label ", v, " is not a whole number");
    batch_labels.push_back(static_cast<int64_t>(v));
  }
  add_probabilities(softmax_rows(logits.to_vector(), num_classes_), batch_labels);
}

void MetricAccumulator::add_probabilities(const std::vector<double>& probabilities,
                                          const std::vector<int64_t>& labels) {
  KILN_CHECK(static_cast<int64_t>(probabilities.size()) == static_cast<int64_t>(labels.size()) * num_classes_,
             "MetricAccumulator: probabilities must be (N, K) = (", labels.size(), ", ", num_classes_, "), got ",
             probabilities.size(), " values");
  for (size_t i = 0; i < labels.size(); ++i)
    KILN_CHECK(labels[i] >= 0 && labels[i] < num_classes_, "MetricAccumulator: label ", labels[i],
               " is outside [0, K) = [0, ", num_classes_, ")");
  probabilities_.insert(probabilities_.end(), probabilities.begin(), probabilities.end());
  labels_.insert(labels_.end(), labels.begin(), labels.end());
}

ClassificationReport MetricAccumulator::report(const std::vector<std::string>& class_names,
                                               const std::vector<int>& top_ks) const {
  return classification_report(probabilities_, labels_, num_classes_, class_names, top_ks);
}

void MetricAccumulator::reset() {
  probabilities_.clear();
  labels_.clear();
}

}  // namespace kiln::metrics
