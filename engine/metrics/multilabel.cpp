#include "engine/metrics/multilabel.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <numeric>
#include <utility>

#include "engine/core/check.h"
#include "engine/core/json_parse.h"

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

nlohmann::json nan_to_null(double value) { return std::isnan(value) ? nlohmann::json(nullptr) : nlohmann::json(value); }

std::string str_top_k(int64_t k) { return "top-" + std::to_string(k); }

}  // namespace

std::string DecisionRule::describe() const {
  if (top_k > 0) return str_top_k(top_k);
  bool same = true;
  for (double t : thresholds) same = same && t == thresholds.front();
  std::string text;
  if (thresholds.empty() || same) {
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "threshold %g", thresholds.empty() ? 0.5 : thresholds.front());
    text = buffer;
  } else {
    text = "per-class thresholds";
  }
  return at_least_one ? text + " + at least one" : text;
}

nlohmann::json DecisionRule::to_json() const {
  return {{"thresholds", thresholds}, {"top_k", top_k}, {"at_least_one", at_least_one}};
}

DecisionRule DecisionRule::from_json(const nlohmann::json& j) {
  DecisionRule rule;
  rule.thresholds = j.at("thresholds").get<std::vector<double>>();
  rule.top_k = json_int64_or(j, "top_k", 0, "multi-label decision rule");
  rule.at_least_one = j.value("at_least_one", false);
  return rule;
}

std::vector<int> decide(const std::vector<double>& probabilities, int64_t num_classes, const DecisionRule& rule) {
  const int64_t K = num_classes, N = static_cast<int64_t>(probabilities.size()) / std::max<int64_t>(K, 1);
  KILN_CHECK(rule.top_k > 0 || static_cast<int64_t>(rule.thresholds.size()) == K,
             "decide: thresholds must be (K) = (", K, "), got ", rule.thresholds.size());
  KILN_CHECK(rule.top_k <= K, "decide: top-k = ", rule.top_k, " exceeds the ", K, " classes");
  std::vector<int> predicted(probabilities.size(), 0);
  std::vector<int64_t> order(K);
  for (int64_t n = 0; n < N; ++n) {
    const double* row = probabilities.data() + n * K;
    int* out = predicted.data() + n * K;
    if (rule.top_k > 0) {
      // Highest first; equal scores keep the lower class index (a stable order).
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [row](int64_t a, int64_t b) { return row[a] > row[b]; });
      for (int64_t i = 0; i < rule.top_k; ++i) out[order[i]] = 1;
      continue;
    }
    bool any = false;
    for (int64_t k = 0; k < K; ++k) any |= (out[k] = row[k] >= rule.thresholds[k]);
    if (!any && rule.at_least_one && K > 0) out[std::max_element(row, row + K) - row] = 1;
  }
  return predicted;
}

PrecisionRecallCurve precision_recall_curve(const std::vector<double>& scores, const std::vector<int>& positives) {
  KILN_CHECK(scores.size() == positives.size(), "precision_recall_curve: ", scores.size(), " scores for ",
             positives.size(), " targets");
  std::vector<std::pair<double, int>> column(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) column[i] = {scores[i], positives[i]};
  std::sort(column.begin(), column.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  double total_positives = 0;
  for (const auto& entry : column) total_positives += entry.second;
  PrecisionRecallCurve curve;
  double tp = 0, fp = 0;
  for (size_t i = 0; i < column.size();) {
    const double t = column[i].first;
    // Every image tied at this score crosses together: the order of ties must not matter.
    for (; i < column.size() && column[i].first == t; ++i) (column[i].second ? tp : fp) += 1;
    curve.thresholds.push_back(t);
    curve.precision.push_back(tp / (tp + fp));
    curve.recall.push_back(total_positives > 0 ? tp / total_positives : std::nan(""));
  }
  return curve;
}

double average_precision(const std::vector<double>& scores, const std::vector<int>& positives) {
  const PrecisionRecallCurve curve = precision_recall_curve(scores, positives);
  if (curve.recall.empty() || std::isnan(curve.recall.front())) return std::nan("");
  double ap = 0, previous_recall = 0;
  for (size_t i = 0; i < curve.recall.size(); ++i) {
    ap += (curve.recall[i] - previous_recall) * curve.precision[i];
    previous_recall = curve.recall[i];
  }
  return ap;
}

double label_ranking_loss(const std::vector<double>& probabilities, const std::vector<int>& targets,
                          int64_t num_classes) {
  check_inputs("label_ranking_loss", probabilities, targets, num_classes);
  const int64_t K = num_classes, N = static_cast<int64_t>(targets.size()) / K;
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const double* row = probabilities.data() + n * K;
    const int* truth = targets.data() + n * K;
    int64_t relevant = 0, wrong_pairs = 0;
    for (int64_t a = 0; a < K; ++a) {
      if (!truth[a]) continue;
      ++relevant;
      for (int64_t b = 0; b < K; ++b) wrong_pairs += !truth[b] && row[b] >= row[a];
    }
    if (relevant > 0 && relevant < K)
      total += static_cast<double>(wrong_pairs) / static_cast<double>(relevant * (K - relevant));
  }
  return N > 0 ? total / static_cast<double>(N) : 0.0;
}

double coverage_error(const std::vector<double>& probabilities, const std::vector<int>& targets, int64_t num_classes) {
  check_inputs("coverage_error", probabilities, targets, num_classes);
  const int64_t K = num_classes, N = static_cast<int64_t>(targets.size()) / K;
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const double* row = probabilities.data() + n * K;
    const int* truth = targets.data() + n * K;
    double lowest_relevant = INFINITY;
    for (int64_t k = 0; k < K; ++k)
      if (truth[k]) lowest_relevant = std::min(lowest_relevant, row[k]);
    if (lowest_relevant == INFINITY) continue;  // no true label: nothing to cover
    for (int64_t k = 0; k < K; ++k) total += row[k] >= lowest_relevant;
  }
  return N > 0 ? total / static_cast<double>(N) : 0.0;
}

MultilabelReport multilabel_report(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                   int64_t num_classes, const std::vector<double>& thresholds,
                                   std::vector<std::string> class_names) {
  KILN_CHECK(static_cast<int64_t>(thresholds.size()) == num_classes, "multilabel_report: thresholds must be (K) = (",
             num_classes, "), got ", thresholds.size());
  DecisionRule rule;
  rule.thresholds = thresholds;
  return multilabel_report(probabilities, targets, num_classes, rule, std::move(class_names));
}

MultilabelReport multilabel_report(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                   int64_t num_classes, const DecisionRule& rule,
                                   std::vector<std::string> class_names) {
  check_inputs("multilabel_report", probabilities, targets, num_classes);
  if (class_names.empty())
    for (int64_t k = 0; k < num_classes; ++k) class_names.push_back(std::to_string(k));
  KILN_CHECK(static_cast<int64_t>(class_names.size()) == num_classes, "multilabel_report: ", class_names.size(),
             " class names given for K = ", num_classes, " classes");
  const int64_t K = num_classes;
  const std::vector<int> predicted = decide(probabilities, K, rule);
  MultilabelReport report;
  report.rule = rule.describe();
  report.count = static_cast<int64_t>(targets.size()) / K;
  const int64_t N = report.count;
  report.per_class.resize(K);
  std::vector<double> column(N);
  std::vector<int> column_truth(N);
  int64_t classes_with_positives = 0;
  for (int64_t k = 0; k < K; ++k) {
    MultilabelClassMetrics& m = report.per_class[k];
    m.name = class_names[k];
    m.threshold = rule.top_k > 0 ? std::nan("") : rule.thresholds[k];
    for (int64_t n = 0; n < N; ++n) {
      const bool is_predicted = predicted[n * K + k] == 1;
      const bool actual = targets[n * K + k] == 1;
      m.true_positives += is_predicted && actual;
      m.false_positives += is_predicted && !actual;
      m.false_negatives += !is_predicted && actual;
      column[n] = probabilities[n * K + k];
      column_truth[n] = targets[n * K + k];
    }
    m.support = m.true_positives + m.false_negatives;
    const AveragedMetrics prf = from_counts(static_cast<double>(m.true_positives),
                                            static_cast<double>(m.false_positives),
                                            static_cast<double>(m.false_negatives));
    m.precision = prf.precision;
    m.recall = prf.recall;
    m.f1 = prf.f1;
    m.average_precision = average_precision(column, column_truth);
    if (!std::isnan(m.average_precision)) {
      report.mean_average_precision += m.average_precision;
      ++classes_with_positives;
    }
  }
  if (classes_with_positives > 0) report.mean_average_precision /= static_cast<double>(classes_with_positives);
  double tp = 0, fp = 0, fn = 0, total_support = 0;
  for (const MultilabelClassMetrics& m : report.per_class) {
    tp += static_cast<double>(m.true_positives);
    fp += static_cast<double>(m.false_positives);
    fn += static_cast<double>(m.false_negatives);
    total_support += static_cast<double>(m.support);
    report.macro.precision += m.precision / static_cast<double>(K);
    report.macro.recall += m.recall / static_cast<double>(K);
    report.macro.f1 += m.f1 / static_cast<double>(K);
    const double weight = static_cast<double>(m.support);
    report.weighted.precision += weight * m.precision;
    report.weighted.recall += weight * m.recall;
    report.weighted.f1 += weight * m.f1;
  }
  report.weighted.precision = safe_divide(report.weighted.precision, total_support);
  report.weighted.recall = safe_divide(report.weighted.recall, total_support);
  report.weighted.f1 = safe_divide(report.weighted.f1, total_support);
  report.micro = from_counts(tp, fp, fn);
  // Per image: its own P/R/F1 over its label set, and whether the set is exact.
  double wrong = 0, exact = 0;
  for (int64_t n = 0; n < N; ++n) {
    double image_tp = 0, image_fp = 0, image_fn = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int p = predicted[n * K + k], t = targets[n * K + k];
      image_tp += p && t;
      image_fp += p && !t;
      image_fn += !p && t;
    }
    const AveragedMetrics prf = from_counts(image_tp, image_fp, image_fn);
    report.samples.precision += prf.precision;
    report.samples.recall += prf.recall;
    report.samples.f1 += prf.f1;
    wrong += image_fp + image_fn;
    exact += image_fp + image_fn == 0;
  }
  if (N > 0) {
    report.samples.precision /= static_cast<double>(N);
    report.samples.recall /= static_cast<double>(N);
    report.samples.f1 /= static_cast<double>(N);
    report.hamming_loss = wrong / static_cast<double>(N * K);
    report.subset_accuracy = exact / static_cast<double>(N);
  }
  report.label_ranking_loss = label_ranking_loss(probabilities, targets, K);
  report.coverage_error = coverage_error(probabilities, targets, K);
  return report;
}

std::vector<double> threshold_grid() {
  std::vector<double> grid;
  for (int i = 1; i <= 99; ++i) grid.push_back(i / 100.0);
  return grid;
}

namespace {

// The candidate (highest first, ties to the lowest) with the best F1 when everything in
// `column` scoring at least it is predicted positive; `column` is (score, is positive),
// highest score first, with `positives` > 0 positives. Each entry becomes predicted once,
// when the threshold drops to its score: one pass over the column.
double best_f1_threshold(const std::vector<std::pair<double, int>>& column, double positives,
                         const std::vector<double>& candidates) {
  std::vector<double> tries = candidates;
  if (tries.empty())
    for (const auto& entry : column) tries.push_back(entry.first);
  std::sort(tries.begin(), tries.end(), std::greater<double>());
  tries.erase(std::unique(tries.begin(), tries.end()), tries.end());
  double tp = 0, fp = 0, best_f1 = -1, best = 0;
  size_t next = 0;
  for (double threshold : tries) {
    for (; next < column.size() && column[next].first >= threshold; ++next) (column[next].second ? tp : fp) += 1;
    const double f1 = from_counts(tp, fp, positives - tp).f1;
    if (f1 >= best_f1) {  // ties: the later (lower) threshold replaces the earlier one
      best_f1 = f1;
      best = threshold;
    }
  }
  return best;
}

std::vector<std::pair<double, int>> sorted_column(std::vector<std::pair<double, int>> column) {
  std::sort(column.begin(), column.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return column;
}

}  // namespace

double best_global_threshold(const std::vector<double>& probabilities, const std::vector<int>& targets,
                             int64_t num_classes, const std::vector<double>& candidates,
                             double no_positive_threshold) {
  check_inputs("best_global_threshold", probabilities, targets, num_classes);
  KILN_CHECK(!targets.empty() || !candidates.empty(),
             "best_global_threshold: no images and no candidate thresholds to choose from");
  // Micro-F1 pools the counts of every class, so the search is the per-class one run
  // on all N·K (score, target) pairs as a single column.
  std::vector<std::pair<double, int>> pooled(targets.size());
  double positives = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    pooled[i] = {probabilities[i], targets[i]};
    positives += targets[i];
  }
  if (positives == 0) return no_positive_threshold;
  return best_f1_threshold(sorted_column(std::move(pooled)), positives, candidates);
}

std::vector<double> best_thresholds(const std::vector<double>& probabilities, const std::vector<int>& targets,
                                    int64_t num_classes, const std::vector<double>& candidates,
                                    double no_positive_threshold) {
  check_inputs("best_thresholds", probabilities, targets, num_classes);
  const int64_t N = static_cast<int64_t>(targets.size()) / num_classes;
  KILN_CHECK(N > 0 || !candidates.empty(), "best_thresholds: no images and no candidate thresholds to choose from");
  std::vector<double> out(num_classes);
  for (int64_t k = 0; k < num_classes; ++k) {
    // (score, is positive) of class k, highest score first.
    std::vector<std::pair<double, int>> column(N);
    double positives = 0;
    for (int64_t n = 0; n < N; ++n) {
      column[n] = {probabilities[n * num_classes + k], targets[n * num_classes + k]};
      positives += column[n].second;
    }
    out[k] = positives == 0 ? no_positive_threshold
                            : best_f1_threshold(sorted_column(std::move(column)), positives, candidates);
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
                              {"support", m.support},
                              {"average_precision", nan_to_null(m.average_precision)}});
  j["micro_avg"] = {{"precision", micro.precision}, {"recall", micro.recall}, {"f1", micro.f1}};
  j["macro_avg"] = {{"precision", macro.precision}, {"recall", macro.recall}, {"f1", macro.f1}};
  j["weighted_avg"] = {{"precision", weighted.precision}, {"recall", weighted.recall}, {"f1", weighted.f1}};
  j["samples_avg"] = {{"precision", samples.precision}, {"recall", samples.recall}, {"f1", samples.f1}};
  j["mAP"] = mean_average_precision;
  j["hamming_loss"] = hamming_loss;
  j["subset_accuracy"] = subset_accuracy;
  j["label_ranking_loss"] = label_ranking_loss;
  j["coverage_error"] = coverage_error;
  j["rule"] = rule;
  return j;
}

std::string MultilabelReport::to_table() const {
  std::ostringstream out;
  char line[256];
  size_t width = 12;
  for (const MultilabelClassMetrics& m : per_class) width = std::max(width, m.name.size());
  const int w = static_cast<int>(width);
  std::snprintf(line, sizeof(line), "%*s  %9s %9s %9s %9s %9s %9s\n", w, "class", "threshold", "precision", "recall",
                "f1-score", "support", "AP");
  out << line;
  for (const MultilabelClassMetrics& m : per_class) {
    std::snprintf(line, sizeof(line), "%*s  %9.4f %9.4f %9.4f %9.4f %9lld %9.4f\n", w, m.name.c_str(), m.threshold,
                  m.precision, m.recall, m.f1, static_cast<long long>(m.support), m.average_precision);
    out << line;
  }
  out << "\n";
  const auto average_line = [&](const char* name, const AveragedMetrics& a) {
    std::snprintf(line, sizeof(line), "%*s  %9s %9.4f %9.4f %9.4f\n", w, name, "", a.precision, a.recall, a.f1);
    out << line;
  };
  average_line("micro avg", micro);
  average_line("macro avg", macro);
  average_line("weighted avg", weighted);
  average_line("samples avg", samples);
  std::snprintf(line, sizeof(line),
                "\nmAP %.4f  hamming loss %.4f  subset accuracy %.4f  ranking loss %.4f  coverage %.4f  (%lld images, "
                "%s)\n",
                mean_average_precision, hamming_loss, subset_accuracy, label_ranking_loss, coverage_error,
                static_cast<long long>(count), rule.c_str());
  out << line;
  return out.str();
}

}  // namespace kiln::metrics
