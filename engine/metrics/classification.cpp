#include "engine/metrics/classification.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>
#include <sstream>

#include "engine/core/check.h"
#include "weights/atomic_file.h"

namespace kiln::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double safe_divide(double numerator, double denominator) { return denominator == 0 ? 0.0 : numerator / denominator; }

void check_inputs(const char* op, const std::vector<double>& scores, const std::vector<int64_t>& labels,
                  int64_t num_classes) {
  KILN_CHECK(num_classes > 0, op, ": number of classes K must be positive, got ", num_classes);
  KILN_CHECK(static_cast<int64_t>(scores.size()) == static_cast<int64_t>(labels.size()) * num_classes, op,
             ": scores must be (N, K) = (", labels.size(), ", ", num_classes, ") = ", labels.size() * num_classes,
             " values, got ", scores.size());
  for (size_t i = 0; i < labels.size(); ++i)
    KILN_CHECK(labels[i] >= 0 && labels[i] < num_classes, op, ": labels[", i, "] = ", labels[i],
               " is outside [0, K) = [0, ", num_classes, ")");
}

// JSON has no NaN or infinity: write null for them, as Python's json would not parse them.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
nlohmann::json numbers(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) out.push_back(number(v));
  return out;
}

// "%.10g" keeps ten significant digits; inf and nan come out as "inf" / "nan", which
// Python's float() and pandas read back.
std::string csv_number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

// A class name as one CSV field: quoted when it holds a comma, a quote or a newline.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Fashion-MNIST has "T-shirt/top": a slash cannot go into a file name, so anything
// other than letters, digits, '-' and '_' becomes '_'.
std::string file_safe(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return out;
}

}  // namespace

std::vector<int64_t> predict_classes(const std::vector<double>& scores, int64_t num_classes) {
  KILN_CHECK(num_classes > 0 && static_cast<int64_t>(scores.size()) % num_classes == 0,
             "predict_classes: scores must be (N, K) with K = ", num_classes, ", got ", scores.size(), " values");
  const int64_t N = static_cast<int64_t>(scores.size()) / num_classes;
  std::vector<int64_t> out(N);
  for (int64_t n = 0; n < N; ++n) {
    const double* row = scores.data() + n * num_classes;
    // max_element returns the first of equal maxima: ties go to the lower class index.
    out[n] = std::max_element(row, row + num_classes) - row;
  }
  return out;
}

double top_k_accuracy(const std::vector<double>& scores, const std::vector<int64_t>& labels, int64_t num_classes,
                      int k) {
  check_inputs("top_k_accuracy", scores, labels, num_classes);
  KILN_CHECK(k >= 1, "top_k_accuracy: k must be at least 1, got ", k);
  if (labels.empty()) return 0;
  int64_t hits = 0;
  for (size_t n = 0; n < labels.size(); ++n) {
    const double* row = scores.data() + n * num_classes;
    const int64_t truth = labels[n];
    // The rank of the true class = classes ranked above it: a strictly higher score,
    // or an equal score at a lower index (the argmax tie rule).
    int64_t rank = 0;
    for (int64_t c = 0; c < num_classes; ++c)
      if (row[c] > row[truth] || (row[c] == row[truth] && c < truth)) ++rank;
    if (rank < k) ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(labels.size());
}

std::vector<std::vector<int64_t>> confusion_matrix(const std::vector<int64_t>& labels,
                                                   const std::vector<int64_t>& predictions, int64_t num_classes) {
  KILN_CHECK(labels.size() == predictions.size(), "confusion_matrix: labels (", labels.size(),
             ") and predictions (", predictions.size(), ") must have the same length N");
  std::vector<std::vector<int64_t>> matrix(num_classes, std::vector<int64_t>(num_classes, 0));
  for (size_t i = 0; i < labels.size(); ++i) {
    KILN_CHECK(labels[i] >= 0 && labels[i] < num_classes && predictions[i] >= 0 && predictions[i] < num_classes,
               "confusion_matrix: entry ", i, " (true ", labels[i], ", predicted ", predictions[i],
               ") is outside [0, K) = [0, ", num_classes, ")");
    ++matrix[labels[i]][predictions[i]];
  }
  return matrix;
}

std::vector<ClassMetrics> per_class_metrics(const std::vector<std::vector<int64_t>>& confusion,
                                            const std::vector<std::string>& class_names) {
  const size_t K = confusion.size();
  KILN_CHECK(class_names.size() == K, "per_class_metrics: ", class_names.size(), " class names for a ", K, "x", K,
             " confusion matrix");
  std::vector<ClassMetrics> out(K);
  for (size_t k = 0; k < K; ++k) {
    // Row k = images of true class k; column k = images predicted as k.
    int64_t row_sum = 0, column_sum = 0;
    for (size_t j = 0; j < K; ++j) {
      row_sum += confusion[k][j];
      column_sum += confusion[j][k];
    }
    const double tp = static_cast<double>(confusion[k][k]);
    ClassMetrics& m = out[k];
    m.name = class_names[k];
    m.support = row_sum;
    m.precision = safe_divide(tp, static_cast<double>(column_sum));  // TP / (TP + FP)
    m.recall = safe_divide(tp, static_cast<double>(row_sum));        // TP / (TP + FN)
    m.f1 = safe_divide(2 * m.precision * m.recall, m.precision + m.recall);
  }
  return out;
}

AveragedMetrics macro_average(const std::vector<ClassMetrics>& per_class) {
  AveragedMetrics out;
  for (const ClassMetrics& m : per_class) {
    out.precision += m.precision;
    out.recall += m.recall;
    out.f1 += m.f1;
  }
  const double K = static_cast<double>(per_class.size());
  return per_class.empty() ? out : AveragedMetrics{out.precision / K, out.recall / K, out.f1 / K};
}

AveragedMetrics weighted_average(const std::vector<ClassMetrics>& per_class) {
  AveragedMetrics out;
  double total = 0;
  for (const ClassMetrics& m : per_class) {
    const double w = static_cast<double>(m.support);
    out.precision += w * m.precision;
    out.recall += w * m.recall;
    out.f1 += w * m.f1;
    total += w;
  }
  return {safe_divide(out.precision, total), safe_divide(out.recall, total), safe_divide(out.f1, total)};
}

RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& truth) {
  KILN_CHECK(scores.size() == truth.size(), "roc_curve: scores (", scores.size(), ") and truth (", truth.size(),
             ") must have the same length N");
  // Visit images from the highest score down. Lowering the threshold past a score
  // turns every image with that score positive at once, so only the last image of a
  // run of equal scores gives a point: ties make one diagonal step, not a staircase.
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  RocCurve curve;
  std::vector<double> tps{0}, fps{0};
  curve.thresholds.push_back(std::numeric_limits<double>::infinity());  // nothing predicted positive
  double tp = 0, fp = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    (truth[order[i]] ? tp : fp) += 1;
    const bool last_of_run = i + 1 == order.size() || scores[order[i + 1]] != scores[order[i]];
    if (!last_of_run) continue;
    tps.push_back(tp);
    fps.push_back(fp);
    curve.thresholds.push_back(scores[order[i]]);
  }
  // tp and fp now hold the numbers of positives and negatives.
  for (size_t i = 0; i < tps.size(); ++i) {
    curve.tpr.push_back(tp > 0 ? tps[i] / tp : kNaN);
    curve.fpr.push_back(fp > 0 ? fps[i] / fp : kNaN);
  }
  curve.auc = tp > 0 && fp > 0 ? trapezoid_area(curve.fpr, curve.tpr) : kNaN;
  return curve;
}

double trapezoid_area(const std::vector<double>& x, const std::vector<double>& y) {
  KILN_CHECK(x.size() == y.size(), "trapezoid_area: x (", x.size(), ") and y (", y.size(), ") differ in length");
  double area = 0;
  for (size_t i = 1; i < x.size(); ++i) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2;
  return area;
}

ClassificationReport classification_report(const std::vector<double>& scores, const std::vector<int64_t>& labels,
                                           int64_t num_classes, std::vector<std::string> class_names,
                                           const std::vector<int>& top_ks) {
  check_inputs("classification_report", scores, labels, num_classes);
  if (class_names.empty())
    for (int64_t k = 0; k < num_classes; ++k) class_names.push_back(std::to_string(k));
  KILN_CHECK(static_cast<int64_t>(class_names.size()) == num_classes, "classification_report: ",
             class_names.size(), " class names given for K = ", num_classes, " classes");
  ClassificationReport report;
  report.count = static_cast<int64_t>(labels.size());
  report.class_names = class_names;
  const std::vector<int64_t> predictions = predict_classes(scores, num_classes);
  report.confusion_matrix = confusion_matrix(labels, predictions, num_classes);
  int64_t correct = 0;
  for (int64_t k = 0; k < num_classes; ++k) correct += report.confusion_matrix[k][k];
  report.accuracy = safe_divide(static_cast<double>(correct), static_cast<double>(report.count));
  for (int k : top_ks)
    if (k >= 1 && k <= num_classes) report.top_k_accuracy[k] = top_k_accuracy(scores, labels, num_classes, k);
  report.per_class = per_class_metrics(report.confusion_matrix, class_names);
  report.macro = macro_average(report.per_class);
  report.weighted = weighted_average(report.per_class);

  double auc_sum = 0, weighted_auc_sum = 0, weight_sum = 0;
  int defined = 0;
  const int64_t N = report.count;
  for (int64_t k = 0; k < num_classes; ++k) {
    std::vector<double> column(N);
    std::vector<bool> truth(N);
    for (int64_t n = 0; n < N; ++n) {
      column[n] = scores[n * num_classes + k];
      truth[n] = labels[n] == k;
    }
    report.roc.push_back(roc_curve(column, truth));
    if (!std::isnan(report.roc.back().auc)) {
      auc_sum += report.roc.back().auc;
      weighted_auc_sum += static_cast<double>(report.per_class[k].support) * report.roc.back().auc;
      weight_sum += static_cast<double>(report.per_class[k].support);
      ++defined;
    }
  }
  report.macro_auc = defined > 0 ? auc_sum / defined : kNaN;
  report.weighted_auc = weight_sum > 0 ? weighted_auc_sum / weight_sum : kNaN;
  return report;
}

// ---- output

nlohmann::json ClassificationReport::to_json() const {
  nlohmann::json j;
  j["count"] = count;
  j["classes"] = class_names;
  j["accuracy"] = number(accuracy);
  j["top_k_accuracy"] = nlohmann::json::object();
  for (const auto& [k, value] : top_k_accuracy) j["top_k_accuracy"][std::to_string(k)] = number(value);
  j["confusion_matrix"] = confusion_matrix;  // rows = true class, columns = predicted class
  j["per_class"] = nlohmann::json::array();
  for (size_t k = 0; k < per_class.size(); ++k) {
    const ClassMetrics& m = per_class[k];
    j["per_class"].push_back({{"class", m.name},
                              {"precision", number(m.precision)},
                              {"recall", number(m.recall)},
                              {"f1", number(m.f1)},
                              {"support", m.support},
                              {"auc", number(roc[k].auc)}});
  }
  j["macro_avg"] = {{"precision", number(macro.precision)},
                    {"recall", number(macro.recall)},
                    {"f1", number(macro.f1)},
                    {"auc", number(macro_auc)}};
  j["weighted_avg"] = {{"precision", number(weighted.precision)},
                       {"recall", number(weighted.recall)},
                       {"f1", number(weighted.f1)},
                       {"auc", number(weighted_auc)}};
  j["roc"] = nlohmann::json::array();
  for (size_t k = 0; k < roc.size(); ++k)
    j["roc"].push_back({{"class", class_names[k]},
                        {"fpr", numbers(roc[k].fpr)},
                        {"tpr", numbers(roc[k].tpr)},
                        {"thresholds", numbers(roc[k].thresholds)},  // the first, +inf, is null
                        {"auc", number(roc[k].auc)}});
  return j;
}

void ClassificationReport::write_csv(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  write_file_atomically(dir + "/per_class.csv", [&](std::ostream& out) {
    out << "class,precision,recall,f1,support,auc\n";
    for (size_t k = 0; k < per_class.size(); ++k) {
      const ClassMetrics& m = per_class[k];
      out << csv_field(m.name) << ',' << csv_number(m.precision) << ',' << csv_number(m.recall) << ','
          << csv_number(m.f1) << ',' << m.support << ',' << csv_number(roc[k].auc) << '\n';
    }
  });
  write_file_atomically(dir + "/confusion_matrix.csv", [&](std::ostream& out) {
    // The corner cell says how to read it: rows are true classes, columns predictions.
    out << "true\\predicted";
    for (const std::string& name : class_names) out << ',' << csv_field(name);
    out << '\n';
    for (size_t t = 0; t < confusion_matrix.size(); ++t) {
      out << csv_field(class_names[t]);
      for (int64_t c : confusion_matrix[t]) out << ',' << c;
      out << '\n';
    }
  });
  for (size_t k = 0; k < roc.size(); ++k)
    write_file_atomically(dir + "/roc_" + file_safe(class_names[k]) + ".csv", [&](std::ostream& out) {
      out << "threshold,fpr,tpr\n";
      for (size_t i = 0; i < roc[k].fpr.size(); ++i)
        out << csv_number(roc[k].thresholds[i]) << ',' << csv_number(roc[k].fpr[i]) << ','
            << csv_number(roc[k].tpr[i]) << '\n';
    });
}

std::string ClassificationReport::to_table() const {
  size_t width = std::string("weighted avg").size();
  for (const std::string& name : class_names) width = std::max(width, name.size());
  const int w = static_cast<int>(width);
  std::ostringstream out;
  char line[256];
  auto row = [&](const std::string& label, double p, double r, double f, const std::string& support, double auc) {
    // AUC is printed as "-" where it is undefined (no positives or no negatives).
    char auc_text[16] = "      -";
    if (!std::isnan(auc)) std::snprintf(auc_text, sizeof auc_text, "%7.4f", auc);
    std::snprintf(line, sizeof line, "%*s  %9.4f  %7.4f  %8.4f  %8s  %s\n", w, label.c_str(), p, r, f,
                  support.c_str(), auc_text);
    out << line;
  };
  std::snprintf(line, sizeof line, "%*s  %9s  %7s  %8s  %8s  %7s\n", w, "class", "precision", "recall", "f1-score",
                "support", "auc");
  out << line;
  for (size_t k = 0; k < per_class.size(); ++k) {
    const ClassMetrics& m = per_class[k];
    row(m.name, m.precision, m.recall, m.f1, std::to_string(m.support), roc[k].auc);
  }
  out << '\n';
  row("macro avg", macro.precision, macro.recall, macro.f1, std::to_string(count), macro_auc);
  row("weighted avg", weighted.precision, weighted.recall, weighted.f1, std::to_string(count), weighted_auc);
  out << '\n';
  std::snprintf(line, sizeof line, "%*s  %9.4f  (%lld images)\n", w, "accuracy", accuracy,
                static_cast<long long>(count));
  out << line;
  for (const auto& [k, value] : top_k_accuracy) {
    if (k == 1) continue;  // the accuracy line above
    std::snprintf(line, sizeof line, "%*s  %9.4f\n", w, ("top-" + std::to_string(k) + " accuracy").c_str(), value);
    out << line;
  }
  // The confusion matrix, columns labelled by class index to keep it narrow.
  out << "\nconfusion matrix (rows: true class, columns: predicted class index)\n";
  int cell = 4;
  for (const auto& r : confusion_matrix)
    for (int64_t c : r) cell = std::max(cell, static_cast<int>(std::to_string(c).size()) + 1);
  std::snprintf(line, sizeof line, "%*s ", w + 5, "");
  out << line;
  for (size_t k = 0; k < class_names.size(); ++k) out << std::string(cell - std::to_string(k).size(), ' ') << k;
  out << '\n';
  for (size_t t = 0; t < confusion_matrix.size(); ++t) {
    std::snprintf(line, sizeof line, "%3zu %*s ", t, w + 1, class_names[t].c_str());
    out << line;
    for (int64_t c : confusion_matrix[t]) out << std::string(cell - std::to_string(c).size(), ' ') << c;
    out << '\n';
  }
  return out.str();
}

}  // namespace kiln::metrics
