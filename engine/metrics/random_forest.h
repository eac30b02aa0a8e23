// Random-forest regression and its impurity-based feature importance (MDI), as
// scikit-learn's RandomForestRegressor computes feature_importances_. The sweep
// report (report/sweep_report.h) uses it to say which hyper-parameters the metric
// depends on: X holds one row per trial (its parameters, categoricals one-hot), y
// the trial's metric. The math is in docs/sweep_report.md.
//
// A tree is grown by CART with the squared-error criterion. A node holding samples S
// (weights w_i, the bootstrap counts) has impurity
//     I(S) = sum_i w_i (y_i - ybar)^2 / sum_i w_i,      ybar the weighted mean;
// it is split at the feature f and threshold t that give the largest decrease
//     W(S) I(S) - W(L) I(L) - W(R) I(R),   L = {x_f <= t}, R = the rest, W = sum of weights,
// over every feature of a random subset of max_features and every midpoint between
// consecutive distinct values. A node stays a leaf when it is pure (I <= machine
// epsilon), holds fewer than 2 samples, or no split leaves min_samples_leaf on both sides.
//
// Importance of feature f in one tree: the decreases of the nodes split on f, summed,
// divided by W(root), then normalised so the tree's importances sum to 1. The forest
// averages its trees (a tree that is a single leaf is left out) and normalises again.
//
// Ties between equally good splits go to the feature drawn first in the node's random
// feature order, as in scikit-learn; with bootstrap off, max_features = all and no
// tied decreases, every tree is the tree scikit-learn grows (tests/fixtures/
// make_sweep_importance_fixture.py checks kiln against it).
#pragma once
#include <cstdint>
#include <vector>

namespace kiln::metrics {

struct ForestOptions {
  int trees = 100;
  bool bootstrap = true;     // each tree sees n draws with replacement (as sample weights)
  int max_features = 0;      // features tried per node; 0: all of them
  int min_samples_leaf = 1;
  int max_depth = 0;         // 0: grow until the leaves are pure
  uint64_t seed = 0;         // the same seed grows the same forest
};

struct TreeNode {
  int feature = -1;          // -1: a leaf
  double threshold = 0;      // go left when x[feature] <= threshold
  int left = -1, right = -1;
  double value = 0;          // the weighted mean of y in the node (the prediction at a leaf)
  double impurity = 0;       // weighted variance of y in the node
  double weight = 0;         // sum of the sample weights in the node
};

struct RegressionTree {
  std::vector<TreeNode> nodes;  // nodes[0] is the root
  int features = 0;

  double predict(const std::vector<double>& x) const;
  // Impurity decrease per feature over the tree's splits, divided by the root's weight
  // and normalised to sum to 1 (all zeros for a single-leaf tree).
  std::vector<double> feature_importances() const;
};

// X: n rows of d features; y: n targets; weights: n non-negative sample weights (a
// sample with weight 0 is left out). `seed` orders the features tried at each node.
RegressionTree fit_regression_tree(const std::vector<std::vector<double>>& X, const std::vector<double>& y,
                                   const std::vector<double>& weights, const ForestOptions& options, uint64_t seed);

struct RandomForest {
  std::vector<RegressionTree> trees;
  int features = 0;

  double predict(const std::vector<double>& x) const;  // the mean of the trees' predictions
  // The trees' importances averaged (single-leaf trees left out), normalised to sum to 1;
  // all zeros when every tree is a single leaf (y constant).
  std::vector<double> feature_importances() const;
};

// Throws when X is empty or ragged, y's length differs, or a value is not finite.
RandomForest fit_random_forest(const std::vector<std::vector<double>>& X, const std::vector<double>& y,
                               const ForestOptions& options = {});

}  // namespace kiln::metrics
