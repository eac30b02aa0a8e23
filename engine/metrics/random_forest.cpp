// CART regression trees and a random forest over them (engine/metrics/random_forest.h).
#include "engine/metrics/random_forest.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/core/check.h"
#include "engine/core/rng.h"

namespace kiln::metrics {
namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();  // a node this pure is a leaf
// Two feature values closer than this are the same value (no threshold between them),
// scikit-learn's FEATURE_THRESHOLD.
constexpr double kFeatureThreshold = 1e-7;

// An integer in [0, n) from the stream (n is small: the modulo bias is below 2^-50).
uint64_t draw_below(Rng& rng, uint64_t n) { return rng.next_u64() % n; }

// Weighted sums of y over some samples: enough for the mean and the variance.
struct Moments {
  double weight = 0, sum = 0, sum_squares = 0;
  void add(double w, double y) {
    weight += w;
    sum += w * y;
    sum_squares += w * y * y;
  }
  double mean() const { return sum / weight; }
};

// Weighted variance of y over `samples`, computed around the mean (two passes: no
// cancellation when the metric values are close together, as accuracies are).
double impurity_of(const std::vector<int>& samples, const std::vector<double>& y, const std::vector<double>& w,
                   double mean) {
  double weight = 0, squares = 0;
  for (int i : samples) {
    weight += w[i];
    squares += w[i] * (y[i] - mean) * (y[i] - mean);
  }
  return squares / weight;
}

struct Split {
  int feature = -1;
  double threshold = 0;
  double proxy = -std::numeric_limits<double>::infinity();
  std::vector<int> left, right;
};

class TreeBuilder {
 public:
  TreeBuilder(const std::vector<std::vector<double>>& X, const std::vector<double>& y, const std::vector<double>& w,
              const ForestOptions& options, uint64_t seed)
      : X_(X), y_(y), w_(w), options_(options), rng_(seed), features_(static_cast<int>(X.front().size())) {}

  RegressionTree build() {
    RegressionTree tree;
    tree.features = features_;
    std::vector<int> samples;
    for (size_t i = 0; i < y_.size(); ++i)
      if (w_[i] > 0) samples.push_back(static_cast<int>(i));
    KILN_CHECK(!samples.empty(), "random forest: every sample weight is 0");
    grow(tree, samples, 0);
    return tree;
  }

 private:
  // Appends the node of `samples` and, unless it is a leaf, its subtrees; returns its index.
  int grow(RegressionTree& tree, const std::vector<int>& samples, int depth) {
    Moments m;
    for (int i : samples) m.add(w_[i], y_[i]);
    TreeNode node;
    node.value = m.mean();
    node.weight = m.weight;
    node.impurity = impurity_of(samples, y_, w_, node.value);
    const int index = static_cast<int>(tree.nodes.size());
    tree.nodes.push_back(node);
    const int n = static_cast<int>(samples.size());
    const bool leaf = n < 2 || n < 2 * options_.min_samples_leaf || node.impurity <= kEpsilon ||
                      (options_.max_depth > 0 && depth >= options_.max_depth);
    if (leaf) return index;
    Split split = best_split(samples, m);
    if (split.feature < 0) return index;  // every feature is constant here
    const int left = grow(tree, split.left, depth + 1);
    const int right = grow(tree, split.right, depth + 1);
    TreeNode& parent = tree.nodes[static_cast<size_t>(index)];
    parent.feature = split.feature;
    parent.threshold = split.threshold;
    parent.left = left;
    parent.right = right;
    return index;
  }

  // The split with the largest impurity decrease. Minimising W(L) I(L) + W(R) I(R) is
  // maximising the proxy sum(L)^2 / W(L) + sum(R)^2 / W(R) (the total's terms cancel).
  Split best_split(const std::vector<int>& samples, const Moments& total) {
    const int max_features = options_.max_features > 0 ? std::min(options_.max_features, features_) : features_;
    // Features in a random order (Fisher-Yates); the first max_features that vary in
    // this node are tried, and a later one wins only with a strictly larger proxy.
    std::vector<int> order(static_cast<size_t>(features_));
    std::iota(order.begin(), order.end(), 0);
    for (int i = features_ - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[draw_below(rng_, static_cast<uint64_t>(i) + 1)]);
    Split best;
    int best_position = -1;
    std::vector<int> best_sorted, sorted = samples;
    int tried = 0;
    for (int f : order) {
      if (tried == max_features) break;
      std::stable_sort(sorted.begin(), sorted.end(), [&](int a, int b) { return X_[a][f] < X_[b][f]; });
      if (X_[sorted.back()][f] <= X_[sorted.front()][f] + kFeatureThreshold) continue;  // constant here
      ++tried;
      Moments left;
      const int n = static_cast<int>(sorted.size());
      for (int p = 0; p + 1 < n; ++p) {
        left.add(w_[sorted[p]], y_[sorted[p]]);
        if (X_[sorted[p + 1]][f] <= X_[sorted[p]][f] + kFeatureThreshold) continue;  // no threshold between equal values
        if (p + 1 < options_.min_samples_leaf || n - p - 1 < options_.min_samples_leaf) continue;
        const double right_weight = total.weight - left.weight, right_sum = total.sum - left.sum;
        const double proxy = left.sum * left.sum / left.weight + right_sum * right_sum / right_weight;
        if (proxy > best.proxy) {
          best.proxy = proxy;
          best.feature = f;
          // The midpoint; where it rounds up to the right value, the left value.
          double t = X_[sorted[p]][f] / 2.0 + X_[sorted[p + 1]][f] / 2.0;
          if (t == X_[sorted[p + 1]][f] || std::isinf(t)) t = X_[sorted[p]][f];
          best.threshold = t;
          best_position = p;
          best_sorted = sorted;
        }
      }
    }
    if (best.feature >= 0) {
      best.left.assign(best_sorted.begin(), best_sorted.begin() + best_position + 1);
      best.right.assign(best_sorted.begin() + best_position + 1, best_sorted.end());
    }
    return best;
  }

  const std::vector<std::vector<double>>& X_;
  const std::vector<double>& y_;
  const std::vector<double>& w_;
  const ForestOptions& options_;
  Rng rng_;
  int features_;
};

void check_inputs(const std::vector<std::vector<double>>& X, const std::vector<double>& y) {
  KILN_CHECK(!X.empty(), "random forest: no samples (X has no rows)");
  KILN_CHECK(y.size() == X.size(), "random forest: X has ", X.size(), " rows but y has ", y.size(), " values");
  const size_t d = X.front().size();
  KILN_CHECK(d > 0, "random forest: X has no columns (no features)");
  for (size_t i = 0; i < X.size(); ++i) {
    KILN_CHECK(X[i].size() == d, "random forest: row ", i, " of X has ", X[i].size(), " features, row 0 has ", d);
    for (size_t j = 0; j < d; ++j)
      KILN_CHECK(std::isfinite(X[i][j]), "random forest: X[", i, "][", j, "] is not finite (", X[i][j], ")");
    KILN_CHECK(std::isfinite(y[i]), "random forest: y[", i, "] is not finite (", y[i], ")");
  }
}

}  // namespace

double RegressionTree::predict(const std::vector<double>& x) const {
  KILN_CHECK(!nodes.empty(), "RegressionTree::predict: the tree has not been fitted");
  KILN_CHECK(static_cast<int>(x.size()) == features, "RegressionTree::predict: expected ", features,
             " features, got ", x.size());
  int at = 0;
  while (nodes[static_cast<size_t>(at)].feature >= 0) {
    const TreeNode& node = nodes[static_cast<size_t>(at)];
    at = x[static_cast<size_t>(node.feature)] <= node.threshold ? node.left : node.right;
  }
  return nodes[static_cast<size_t>(at)].value;
}

std::vector<double> RegressionTree::feature_importances() const {
  std::vector<double> importance(static_cast<size_t>(features), 0.0);
  if (nodes.empty()) return importance;
  for (const TreeNode& node : nodes) {
    if (node.feature < 0) continue;
    const TreeNode& l = nodes[static_cast<size_t>(node.left)];
    const TreeNode& r = nodes[static_cast<size_t>(node.right)];
    importance[static_cast<size_t>(node.feature)] +=
        node.weight * node.impurity - l.weight * l.impurity - r.weight * r.impurity;
  }
  double total = 0;
  for (double& v : importance) {
    v /= nodes.front().weight;
    total += v;
  }
  if (total > 0)
    for (double& v : importance) v /= total;
  return importance;
}

RegressionTree fit_regression_tree(const std::vector<std::vector<double>>& X, const std::vector<double>& y,
                                   const std::vector<double>& weights, const ForestOptions& options, uint64_t seed) {
  check_inputs(X, y);
  KILN_CHECK(weights.size() == y.size(), "regression tree: ", weights.size(), " sample weights for ", y.size(), " samples");
  for (size_t i = 0; i < weights.size(); ++i)
    KILN_CHECK(weights[i] >= 0 && std::isfinite(weights[i]), "regression tree: sample weight ", i, " is ", weights[i],
               " (expected a finite value >= 0)");
  KILN_CHECK(options.min_samples_leaf >= 1, "regression tree: min_samples_leaf must be >= 1, got ", options.min_samples_leaf);
  return TreeBuilder(X, y, weights, options, seed).build();
}

double RandomForest::predict(const std::vector<double>& x) const {
  KILN_CHECK(!trees.empty(), "RandomForest::predict: the forest has no trees");
  double total = 0;
  for (const RegressionTree& tree : trees) total += tree.predict(x);
  return total / static_cast<double>(trees.size());
}

std::vector<double> RandomForest::feature_importances() const {
  std::vector<double> mean(static_cast<size_t>(features), 0.0);
  int counted = 0;
  for (const RegressionTree& tree : trees) {
    if (tree.nodes.size() <= 1) continue;  // a single leaf explains nothing
    const std::vector<double> importance = tree.feature_importances();
    for (size_t f = 0; f < mean.size(); ++f) mean[f] += importance[f];
    ++counted;
  }
  double total = 0;
  for (double v : mean) total += v;
  if (counted == 0 || total <= 0) return std::vector<double>(static_cast<size_t>(features), 0.0);
  for (double& v : mean) v /= total;  // the mean over trees, normalised: the 1/counted cancels
  return mean;
}

RandomForest fit_random_forest(const std::vector<std::vector<double>>& X, const std::vector<double>& y,
                               const ForestOptions& options) {
  check_inputs(X, y);
  KILN_CHECK(options.trees >= 1, "random forest: trees must be >= 1, got ", options.trees);
  RandomForest forest;
  forest.features = static_cast<int>(X.front().size());
  const size_t n = y.size();
  for (int t = 0; t < options.trees; ++t) {
    // Each tree has its own stream: one for the bootstrap draw, one for the feature orders.
    const uint64_t tree_seed = splitmix64(options.seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(t));
    std::vector<double> weights(n, 1.0);
    if (options.bootstrap) {
      std::fill(weights.begin(), weights.end(), 0.0);
      Rng draws(tree_seed ^ 0x5bd1e995ull);
      for (size_t k = 0; k < n; ++k) weights[draw_below(draws, n)] += 1.0;
    }
    forest.trees.push_back(fit_regression_tree(X, y, weights, options, tree_seed));
  }
  return forest;
}

}  // namespace kiln::metrics
