// The Bayesian sampler of `method: bayes`: the Tree-structured Parzen Estimator
// (Bergstra, Bardenet, Bengio and Kégl, "Algorithms for Hyper-Parameter
// Optimization", NeurIPS 2011). docs/sweeps.md explains it with a picture; in short:
//
//   1. Sort the finished trials by loss (the metric, negated when it is maximized)
//      and split them at the gamma quantile: the best n_good = ceil(gamma * n) are
//      "good", the rest "bad".
//   2. For each parameter fit two densities over its range: l(x) from the good
//      trials' values and g(x) from the bad ones' (Parzen estimators: one kernel per
//      trial plus one wide prior component, so neither is ever zero).
//   3. Draw n_candidates points from l and keep the one with the largest l(x)/g(x).
//      Bergstra et al. show this maximizes the expected improvement over the
//      gamma-quantile loss, without fitting a model of the loss itself.
// Parameters are modelled independently (l and g are products over parameters).
// The first n_startup trials are drawn at random (the same draws as method random).
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "sweep/config.h"
#include "sweep/search_space.h"

namespace kiln::sweep {

struct Observation {
  nlohmann::json params;  // {"lr": ..., ...}
  double loss = 0;        // lower is better
};

struct TpeOptions {
  int n_startup = 5;       // random trials before the model is used
  double gamma = 0.25;     // the good fraction
  int n_candidates = 24;   // draws from l(x) scored by l(x) / g(x)
};

// The parameters of the next trial.
nlohmann::json tpe_suggest(const std::vector<Parameter>& parameters, const std::vector<Observation>& observations,
                           Stream& stream, const TpeOptions& options = {});

// One parameter's Parzen estimator over its search coordinate (the value, or its log
// for log-scale distributions; integers widened by half a step on each side):
// a uniform prior component plus one Gaussian per observation, truncated to
// [low, high], all with equal weight. Exposed for tests and docs.
struct ParzenEstimator {
  double low = 0, high = 1;
  std::vector<double> centers, widths;
  double log_density(double u) const;
  double draw(Stream& stream) const;
};
ParzenEstimator fit_parzen(const std::vector<double>& points, double low, double high);

// The search coordinate of a value and the range of the coordinate.
double to_coordinate(const Parameter& p, double value);
double from_coordinate(const Parameter& p, double u);
void coordinate_range(const Parameter& p, double& low, double& high);

}  // namespace kiln::sweep
