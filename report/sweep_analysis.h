// The numbers behind a sweep report (report/sweep_report.h): which parameters were
// swept and how each is drawn (an axis), the trials as a design matrix, each
// parameter's Pearson correlation with the metric and with the validation loss, and
// its random-forest importance (engine/metrics/random_forest.h). docs/sweep_report.md
// has the formulas.
//
// Axes. A parameter is an axis when its values differ between trials. It is numeric
// when the journal calls it continuous or integer, or when every categorical value is
// a number (filters 16/32/64); numeric axes are log10 when the distribution is a
// log_uniform one, or when a numeric categorical's positive values span a factor of
// 100 or more (lr 1e-4, 1e-3, 1e-2). Any other parameter (activation, optimizer,
// batch-norm true/false) is categorical.
//
// Columns of the design matrix. A numeric axis is one column (its log10 on a log
// axis: correlation then measures a trend per decade, as the axis shows it). A
// categorical axis with values v_1..v_m becomes m one-hot columns "name=v_j" (1 when
// the trial used v_j, else 0), so that each value gets its own correlation and no
// order is invented between them. A trial enters when it has a metric (finished,
// stopped or failed after validating) and a value for every numeric axis.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "report/sweep_journal.h"

namespace kiln::report {

struct SweepAxis {
  std::string name;
  bool categorical = false;
  bool log = false;                     // numeric axis in log10
  std::vector<std::string> categories;  // categorical: value labels, journal order then first seen
  std::vector<double> listed_values;    // a numeric axis from a list of values (filters 16/32/64): them, sorted
};

struct SweepAnalysis {
  std::vector<SweepAxis> axes;
  std::vector<size_t> trials;                     // rows: indices into journal.trials
  std::vector<std::vector<double>> axis_values;   // [row][axis]: the value (numeric) or category index
  std::vector<double> metric, val_loss;           // per row; val_loss NaN where unknown
  std::vector<std::string> columns;               // "lr", "activation=relu", ...
  std::vector<size_t> column_axis;                // the axis of each column
  std::vector<std::vector<double>> design;        // [row][column]
  std::vector<double> pearson_metric, pearson_loss;  // per column (NaN: undefined)
  std::vector<double> importance;                 // per column, sums to 1 (all 0 when undefined)
  std::vector<double> axis_importance;            // per axis: the sum over its columns
};

// A JSON value as the report writes it: strings bare, numbers as %g, true/false.
std::string parameter_label(const nlohmann::json& value);

// `val_loss_by_trial` has one entry per journal trial (NaN where the run folder did
// not say). The forest: 100 trees with bootstrap, seeded with the journal's seed.
SweepAnalysis analyze_sweep(const SweepJournal& journal, const std::vector<double>& val_loss_by_trial);

}  // namespace kiln::report
