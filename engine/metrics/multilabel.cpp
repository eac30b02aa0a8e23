#include "engine/metrics/multilabel.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "engine/core/check.h"

namespace kiln::metrics {
namespace {

double safe_divide(double numerator, double denominator) { return denominator == 0 ? 0.0 : numerator / denominator; }

void check_inputs(const char* op, const std::vector<double>& probabilities, const std::vector<int>& targets,
                  int64_t num_classes) {
  KILN_CHECK(num_classes > 0, op, ": number of classes K must be positive, got ", num_classes);
  KILN_CHECK(probabilities.size() == targets.size(), op, ": probabilities (", probabilities.size(),
             " values) and targets (", targets.size(), " values) must both be (N, K)");
  KILN_CHECK(static_cast<int64_t>(targets.size()) % num_classes == 0, op, ": targets must be (N, K) with K = ",
             num_classes, ", got ", targets.size(), " values");
  for (size_t i = 0; i < targets.size(); ++i)
    KILN_CHECK(targets[i] == 0 || targets[i] == 1, op, ": targets must be multi-hot (0 or 1), got ", targets[i],
               " at row ", i / num_classes, ", class ", i % num_classes);
}

// precision, recall and F1 from the three counts, each 0 where its denominator is 0.
AveragedMetrics from_counts(double tp, double fp, double fn) {
  return {safe_divide(tp, tp + fp), safe_divide(tp, tp + fn), safe_divide(2 * tp, 2 * tp + fp + fn)};
}

}  // namespace

MultilabelReport multilabel_report(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                   int64_t num_classes, const std::vector<double>& thresholds,
                                   std::vector<std::string> class_names) {
  check_inputs("multilabel_report", probabilities, targets, num_classes);
  KILN_CHECK(static_cast<int64_t>(thresholds.size()) == num_classes, "multilabel_report: thresholds must be (K) = (",
             num_classes, "), got ", thresholds.size());
  if (class_names.empty())
    for (int64_t k = 0; k < num_classes; ++k) class_names.push_back(std::to_string(k));
  KILN_CHECK(static_cast<int64_t>(class_names.size()) == num_classes, "multilabel_report: ", class_names.size(),
             " class names given for K = ", num_classes, " classes");
  MultilabelReport report;
  report.count = static_cast<int64_t>(targets.size()) / num_classes;
  report.per_class.resize(num_classes);
  for (int64_t k = 0; k < num_classes; ++k) {
    MultilabelClassMetrics& m = report.per_class[k];
    m.name = class_names[k];
    m.threshold = thresholds[k];
    for (int64_t n = 0; n < report.count; ++n) {
      const bool predicted = probabilities[n * num_classes + k] >= thresholds[k];
      const bool actual = targets[n * num_classes + k] == 1;
      m.true_positives += predicted && actual;
      m.false_positives += predicted && !actual;
      m.false_negatives += !predicted && actual;
    }
    m.support = m.true_positives + m.false_negatives;
    const AveragedMetrics prf = from_counts(static_cast<double>(m.true_positives),
                                            static_cast<double>(m.false_positives),
                                            static_cast<double>(m.false_negatives));
    m.precision = prf.precision;
    m.recall = prf.recall;
    m.f1 = prf.f1;
  }
  double tp = 0, fp = 0, fn = 0;
  for (const MultilabelClassMetrics& m : report.per_class) {
    tp += static_cast<double>(m.true_positives);
    fp += static_cast<double>(m.false_positives);
    fn += static_cast<double>(m.false_negatives);
    report.macro.precision += m.precision / static_cast<double>(num_classes);
    report.macro.recall += m.recall / static_cast<double>(num_classes);
    report.macro.f1 += m.f1 / static_cast<double>(num_classes);
  }
  report.micro = from_counts(tp, fp, fn);
  return report;
}

std::vector<double> best_thresholds(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                    int64_t num_classes, const std::vector<double>& candidates) {
  check_inputs("best_thresholds", probabilities, targets, num_classes);
  const int64_t N = static_cast<int64_t>(targets.size()) / num_classes;
  KILN_CHECK(N > 0 || !candidates.empty(), "best_thresholds: no images and no candidate thresholds to choose from");
  std::vector<double> out(num_classes);
  for (int64_t k = 0; k < num_classes; ++k) {
    // (score, is positive) of class k, highest score first.
    std::vector<std::pair<double, int>> column(N);
    for (int64_t n = 0; n < N; ++n) column[n] = {probabilities[n * num_classes + k], targets[n * num_classes + k]};
    std::sort(column.begin(), column.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<double> tries = candidates;
    if (tries.empty())
      for (const auto& entry : column) tries.push_back(entry.first);
    std::sort(tries.begin(), tries.end(), std::greater<double>());
    tries.erase(std::unique(tries.begin(), tries.end()), tries.end());
    double positives = 0;
    for (const auto& entry : column) positives += entry.second;
    // Sweep the thresholds downwards; each image becomes predicted once, when the
    // threshold drops to its score, so the whole search is one pass over the column.
    double tp = 0, fp = 0, best_f1 = -1;
    size_t next = 0;
    for (double threshold : tries) {
      for (; next < column.size() && column[next].first >= threshold; ++next) (column[next].second ? tp : fp) += 1;
      const double f1 = from_counts(tp, fp, positives - tp).f1;
      if (f1 > best_f1) {  // strictly better: on ties the earlier (higher) threshold stays
        best_f1 = f1;
        out[k] = threshold;
      }
    }
  }
  return out;
}

nlohmann::json MultilabelReport::to_json() const {
  nlohmann::json j;
  j["count"] = count;
  j["per_class"] = nlohmann::json::array();
  for (const MultilabelClassMetrics& m : per_class)
    j["per_class"].push_back({{"class", m.name},
                              {"threshold", m.threshold},
                              {"true_positives", m.true_positives},
                              {"false_positives", m.false_positives},
                              {"false_negatives", m.false_negatives},
                              {"precision", m.precision},
                              {"recall", m.recall},
                              {"f1", m.f1},
                              {"support", m.support}});
  j["micro_avg"] = {{"precision", micro.precision}, {"recall", micro.recall}, {"f1", micro.f1}};
  j["macro_avg"] = {{"precision", macro.precision}, {"recall", macro.recall}, {"f1", macro.f1}};
  return j;
}

}  // namespace kiln::metrics
