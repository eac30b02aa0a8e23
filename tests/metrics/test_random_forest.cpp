// Random-forest importance and Pearson correlation against scikit-learn and numpy
// (tests/fixtures/make_sweep_importance_fixture.py writes sweep_importance.json).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/metrics/correlation.h"
#include "engine/metrics/random_forest.h"
#include "test_util.h"

using namespace kiln;

namespace {

nlohmann::json load_importance_fixture() {
  std::ifstream in(test::fixture_dir() + "/sweep_importance.json");
  REQUIRE_MESSAGE(in.good(), "tests/fixtures/sweep_importance.json is missing; run "
                             "/usr/bin/python3 tests/fixtures/make_sweep_importance_fixture.py");
  return nlohmann::json::parse(in);
}

std::vector<double> column(const std::vector<std::vector<double>>& X, size_t j) {
  std::vector<double> out;
  for (const auto& row : X) out.push_back(row[j]);
  return out;
}

void check_equal(const std::vector<double>& got, const std::vector<double>& want, double tolerance) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(std::abs(got[i] - want[i]) < tolerance, "feature ", i, ": kiln ", got[i], ", reference ", want[i]);
}

}  // namespace

TEST_CASE("pearson correlation equals numpy.corrcoef for every parameter column, one-hot columns included") {
  const nlohmann::json f = load_importance_fixture();
  const auto X = f["X"].get<std::vector<std::vector<double>>>();
  const auto accuracy = f["val_accuracy"].get<std::vector<double>>();
  const auto loss = f["val_loss"].get<std::vector<double>>();
  std::vector<double> r_accuracy, r_loss;
  for (size_t j = 0; j < X.front().size(); ++j) {
    r_accuracy.push_back(metrics::pearson_correlation(column(X, j), accuracy));
    r_loss.push_back(metrics::pearson_correlation(column(X, j), loss));
  }
  check_equal(r_accuracy, f["pearson_accuracy"].get<std::vector<double>>(), 1e-12);
  check_equal(r_loss, f["pearson_loss"].get<std::vector<double>>(), 1e-12);
}

TEST_CASE("pearson correlation: exact lines, a constant input is undefined, lengths must match") {
  CHECK(metrics::pearson_correlation({1, 2, 3, 4}, {3, 5, 7, 9}) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(metrics::pearson_correlation({1, 2, 3, 4}, {9, 7, 5, 3}) == doctest::Approx(-1.0).epsilon(1e-15));
  CHECK(std::isnan(metrics::pearson_correlation({2, 2, 2}, {1, 2, 3})));
  CHECK(std::isnan(metrics::pearson_correlation({1}, {1})));
  CHECK_THROWS_WITH_AS(metrics::pearson_correlation({1, 2}, {1, 2, 3}), doctest::Contains("x has 2 values, y has 3"),
                       Error);
}

TEST_CASE("random forest importances equal scikit-learn's RandomForestRegressor without bootstrap") {
  const nlohmann::json f = load_importance_fixture();
  const auto X = f["X"].get<std::vector<std::vector<double>>>();
  const auto y = f["val_accuracy"].get<std::vector<double>>();
  metrics::ForestOptions o;
  o.trees = 5;
  o.bootstrap = false;
  o.max_features = 0;
  SUBCASE("max_depth 3") {
    o.max_depth = 3;
    check_equal(metrics::fit_random_forest(X, y, o).feature_importances(),
                f["importances_max_depth_3"].get<std::vector<double>>(), 1e-9);
  }
  SUBCASE("min_samples_leaf 3") {
    o.min_samples_leaf = 3;
    check_equal(metrics::fit_random_forest(X, y, o).feature_importances(),
                f["importances_min_samples_leaf_3"].get<std::vector<double>>(), 1e-9);
  }
}

TEST_CASE("a fully grown tree fits its training set exactly, and the MDI of a hand-made split") {
  // y depends on feature 1 only: one split at 1.5 separates it; feature 0 is noise.
  const std::vector<std::vector<double>> X{{0.3, 1}, {0.1, 1}, {0.9, 2}, {0.5, 2}, {0.7, 1}, {0.2, 2}};
  const std::vector<double> y{1, 1, 5, 5, 1, 5};
  const metrics::RegressionTree tree = metrics::fit_regression_tree(X, y, std::vector<double>(6, 1.0), {}, 7);
  REQUIRE(tree.nodes.size() == 3);
  CHECK(tree.nodes[0].feature == 1);
  CHECK(tree.nodes[0].threshold == 1.5);
  CHECK(tree.nodes[0].impurity == doctest::Approx(4.0));  // variance of three 1s and three 5s
  for (size_t i = 0; i < X.size(); ++i) CHECK(tree.predict(X[i]) == y[i]);
  CHECK(tree.feature_importances() == std::vector<double>{0.0, 1.0});
}

TEST_CASE("a bootstrap forest is seeded: the same seed gives the same importances, summing to 1") {
  const nlohmann::json f = load_importance_fixture();
  const auto X = f["X"].get<std::vector<std::vector<double>>>();
  const auto y = f["val_accuracy"].get<std::vector<double>>();
  metrics::ForestOptions o;  // 100 trees, bootstrap, every feature
  o.seed = 3;
  const std::vector<double> a = metrics::fit_random_forest(X, y, o).feature_importances();
  const std::vector<double> b = metrics::fit_random_forest(X, y, o).feature_importances();
  CHECK(a == b);
  CHECK(std::accumulate(a.begin(), a.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-12));
  for (double v : a) CHECK(v >= 0);
  o.seed = 4;
  CHECK(metrics::fit_random_forest(X, y, o).feature_importances() != a);  // another seed, other bootstrap draws
  // The strongest signal of the fixture (dropout, then gelu) leads with any seed.
  CHECK(a[1] == *std::max_element(a.begin(), a.end()));
  o.max_features = 2;  // random feature subsets, as max_features < d
  const std::vector<double> c = metrics::fit_random_forest(X, y, o).feature_importances();
  CHECK(std::accumulate(c.begin(), c.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("random forest: a constant metric has zero importance everywhere, and bad input names what is wrong") {
  const std::vector<std::vector<double>> X{{1, 2}, {2, 1}, {3, 3}};
  CHECK(metrics::fit_random_forest(X, {0.5, 0.5, 0.5}).feature_importances() == std::vector<double>{0, 0});
  CHECK_THROWS_WITH_AS(metrics::fit_random_forest(X, {1, 2}), doctest::Contains("X has 3 rows but y has 2"), Error);
  CHECK_THROWS_WITH_AS(metrics::fit_random_forest({{1, 2}, {1}}, {1, 2}), doctest::Contains("row 1 of X has 1"), Error);
  CHECK_THROWS_WITH_AS(metrics::fit_random_forest({{1, NAN}}, {1}), doctest::Contains("X[0][1] is not finite"), Error);
}
