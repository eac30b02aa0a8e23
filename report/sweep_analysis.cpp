// Axes, design matrix, correlations and importance of a sweep (report/sweep_analysis.h).
#include "report/sweep_analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/core/check.h"
#include "engine/metrics/correlation.h"
#include "engine/metrics/random_forest.h"

namespace kiln::report {
namespace {

using nlohmann::json;

bool is_number(const json& v) { return v.is_number(); }  // json booleans are not numbers

// The axis of one parameter from its journal entry and the values the trials used.
SweepAxis make_axis(const std::string& name, const SweepParameter* spec, const std::vector<const json*>& used) {
  SweepAxis axis;
  axis.name = name;
  std::vector<json> values = spec ? spec->values : std::vector<json>{};
  for (const json* v : used)
    if (v && std::find(values.begin(), values.end(), *v) == values.end()) values.push_back(*v);
  const bool declared_numeric = spec && (spec->kind == "continuous" || spec->kind == "integer");
  const bool all_numbers = !values.empty() && std::all_of(values.begin(), values.end(), is_number);
  axis.categorical = !declared_numeric && !all_numbers;
  if (axis.categorical) {
    for (const json& v : values) {
      const std::string label = parameter_label(v);
      if (std::find(axis.categories.begin(), axis.categories.end(), label) == axis.categories.end())
        axis.categories.push_back(label);
    }
    return axis;
  }
  if (all_numbers) {
    for (const json& v : values) axis.listed_values.push_back(v.get<double>());
    std::sort(axis.listed_values.begin(), axis.listed_values.end());
  }
  if (spec && spec->log_scale()) {
    axis.log = true;
  } else if (all_numbers) {
    double lo = INFINITY, hi = -INFINITY;
    for (const json& v : values) {
      lo = std::min(lo, v.get<double>());
      hi = std::max(hi, v.get<double>());
    }
    axis.log = lo > 0 && hi / lo >= 100;
  }
  return axis;
}

}  // namespace

std::string parameter_label(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_number()) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", value.get<double>());
    return text;
  }
  return value.dump();
}

SweepAnalysis analyze_sweep(const SweepJournal& journal, const std::vector<double>& val_loss_by_trial) {
  KILN_CHECK(val_loss_by_trial.size() == journal.trials.size(), "analyze_sweep: ", val_loss_by_trial.size(),
             " validation losses for ", journal.trials.size(), " trials");
  SweepAnalysis a;
  // The parameters: the journal's, then any flag a trial used that the journal does not list.
  std::vector<std::string> names;
  for (const SweepParameter& p : journal.parameters) names.push_back(p.name);
  for (const SweepTrial& t : journal.trials)
    for (const auto& [name, value] : t.params.items())
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  for (const std::string& name : names) {
    const SweepParameter* spec = nullptr;
    for (const SweepParameter& p : journal.parameters)
      if (p.name == name) spec = &p;
    std::vector<const json*> used;
    for (const SweepTrial& t : journal.trials) used.push_back(t.params.contains(name) ? &t.params[name] : nullptr);
    // Swept: the journal says it varies, or (a flag it does not list) the trials differ.
    std::vector<json> distinct;
    for (const json* v : used)
      if (v && std::find(distinct.begin(), distinct.end(), *v) == distinct.end()) distinct.push_back(*v);
    const bool swept = spec ? spec->swept() : distinct.size() > 1;
    if (swept) a.axes.push_back(make_axis(name, spec, used));
  }

  for (size_t i = 0; i < journal.trials.size(); ++i) {
    const SweepTrial& t = journal.trials[i];
    if (!t.metric || !std::isfinite(*t.metric)) continue;
    std::vector<double> row;
    bool complete = true;
    for (const SweepAxis& axis : a.axes) {
      const json* v = t.params.contains(axis.name) ? &t.params[axis.name] : nullptr;
      if (axis.categorical) {
        const std::string label = v ? parameter_label(*v) : std::string("(unset)");
        auto at = std::find(axis.categories.begin(), axis.categories.end(), label);
        if (at == axis.categories.end()) {
          complete = false;  // a categorical left unset where the journal lists the values
          break;
        }
        row.push_back(static_cast<double>(at - axis.categories.begin()));
      } else {
        if (!v || !v->is_number() || (axis.log && v->get<double>() <= 0)) {
          complete = false;
          break;
        }
        row.push_back(v->get<double>());
      }
    }
    if (!complete) continue;
    a.trials.push_back(i);
    a.axis_values.push_back(row);
    a.metric.push_back(*t.metric);
    a.val_loss.push_back(val_loss_by_trial[i]);
  }

  for (size_t k = 0; k < a.axes.size(); ++k) {
    const SweepAxis& axis = a.axes[k];
    if (axis.categorical) {
      for (const std::string& c : axis.categories) {
        a.columns.push_back(axis.name + "=" + c);
        a.column_axis.push_back(k);
      }
    } else {
      a.columns.push_back(axis.log ? "log10(" + axis.name + ")" : axis.name);
      a.column_axis.push_back(k);
    }
  }
  for (const std::vector<double>& values : a.axis_values) {
    std::vector<double> row;
    for (size_t k = 0; k < a.axes.size(); ++k) {
      if (a.axes[k].categorical) {
        for (size_t c = 0; c < a.axes[k].categories.size(); ++c) row.push_back(values[k] == static_cast<double>(c) ? 1 : 0);
      } else {
        row.push_back(a.axes[k].log ? std::log10(values[k]) : values[k]);
      }
    }
    a.design.push_back(row);
  }

  for (size_t c = 0; c < a.columns.size(); ++c) {
    std::vector<double> x, x_with_loss, loss;
    for (size_t r = 0; r < a.design.size(); ++r) {
      x.push_back(a.design[r][c]);
      if (std::isfinite(a.val_loss[r])) {
        x_with_loss.push_back(a.design[r][c]);
        loss.push_back(a.val_loss[r]);
      }
    }
    a.pearson_metric.push_back(metrics::pearson_correlation(x, a.metric));
    a.pearson_loss.push_back(metrics::pearson_correlation(x_with_loss, loss));
  }
  a.importance.assign(a.columns.size(), 0.0);
  if (a.design.size() >= 2 && !a.columns.empty()) {
    metrics::ForestOptions options;
    options.seed = static_cast<uint64_t>(journal.seed);
    a.importance = metrics::fit_random_forest(a.design, a.metric, options).feature_importances();
  }
  a.axis_importance.assign(a.axes.size(), 0.0);
  for (size_t c = 0; c < a.columns.size(); ++c) a.axis_importance[a.column_axis[c]] += a.importance[c];
  return a;
}

}  // namespace kiln::report
