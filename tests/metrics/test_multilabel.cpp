// Multi-label metrics against hand-computed values (numpy 1.24 gave the same numbers:
// pred = P >= 0.5; tp = (pred & (Y==1)).sum(0); fp, fn likewise; then the formulas).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include "engine/metrics/multilabel.h"
#include "test_util.h"

using namespace kiln::metrics;

namespace {
// N = 6 images, K = 3 labels; each column is an independent yes/no question.
//   P = np.array([[.9,.2,.6],[.8,.6,.4],[.4,.7,.1],[.3,.1,.5],[.6,.4,.3],[.2,.55,.05]])
//   Y = np.array([[1,0,1],[1,1,0],[0,1,0],[1,0,0],[0,0,0],[0,1,0]])
const std::vector<double> kProbabilities = {.9, .2, .6, .8, .6, .4, .4, .7, .1, .3, .1, .5, .6, .4, .3, .2, .55, .05};
const std::vector<int> kTargets = {1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0};
}  // namespace

TEST_CASE("metrics: multi-label per-class, micro and macro precision/recall/F1 at thresholds") {
  const MultilabelReport r = multilabel_report(kProbabilities, kTargets, 3, {.5, .5, .5}, {"a", "b", "c"});
  CHECK(r.count == 6);
  // At 0.5: column 0 predicts images 0, 1, 4 -> TP 2 (0, 1), FP 1 (4), FN 1 (3).
  //         column 1 predicts 1, 2, 5 -> TP 3.   column 2 predicts 0 and 3 (0.5 >= 0.5) -> TP 1, FP 1.
  CHECK(r.per_class[0].true_positives == 2);
  CHECK(r.per_class[0].false_positives == 1);
  CHECK(r.per_class[0].false_negatives == 1);
  CHECK(r.per_class[0].f1 == doctest::Approx(2.0 / 3));
  CHECK(r.per_class[1].precision == doctest::Approx(1.0));
  CHECK(r.per_class[1].f1 == doctest::Approx(1.0));
  CHECK(r.per_class[2].precision == doctest::Approx(0.5));
  CHECK(r.per_class[2].recall == doctest::Approx(1.0));
  CHECK(r.per_class[2].support == 1);
  // micro: TP 6, FP 2, FN 1 -> 6/8, 6/7, 12/15
  CHECK(r.micro.precision == doctest::Approx(0.75));
  CHECK(r.micro.recall == doctest::Approx(0.8571428571428571));
  CHECK(r.micro.f1 == doctest::Approx(0.8));
  // macro: mean of (2/3, 1, 1/2), (2/3, 1, 1), (2/3, 1, 2/3)
  CHECK(r.macro.precision == doctest::Approx(0.7222222222222222));
  CHECK(r.macro.recall == doctest::Approx(0.8888888888888888));
  CHECK(r.macro.f1 == doctest::Approx(0.7777777777777777));
  CHECK(r.to_json()["micro_avg"]["f1"].get<double>() == doctest::Approx(0.8));

  // A threshold above every score: nothing predicted, so precision is 0/0 = 0.
  const MultilabelReport none = multilabel_report(kProbabilities, kTargets, 3, {1.5, 1.5, 1.5});
  CHECK(none.per_class[0].precision == 0.0);
  CHECK(none.micro.f1 == 0.0);
}

TEST_CASE("metrics: multi-label best thresholds maximise per-class F1") {
  // Exact search over each class's own scores. Column 0 from high to low is
  // .9 P, .8 P, .6 N, .4 N, .3 P, .2 N: F1 at each cut = .5, .8, .667, .571, .75, .667 -> 0.8.
  const std::vector<double> exact = best_thresholds(kProbabilities, kTargets, 3);
  CHECK(exact == std::vector<double>{.8, .55, .6});
  // On a grid: column 0 at .75 / .5 / .25 gives F1 .8 / .667 / .75; column 2 gives 0 / .667 / .4.
  const std::vector<double> grid = best_thresholds(kProbabilities, kTargets, 3, {.25, .5, .75});
  CHECK(grid == std::vector<double>{.75, .5, .5});
  // Equal F1 at 0.7 and 0.75 (both predict images 0 and 1 for column 0): the lower wins.
  CHECK(best_thresholds(kProbabilities, kTargets, 3, {.75, .7})[0] == .7);
  CHECK(best_thresholds(kProbabilities, kTargets, 3, {.7, .75})[0] == .7);
  // A class without positives keeps the fallback instead of the lowest candidate.
  const std::vector<int> no_positives_in_2 = {1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0};
  CHECK(best_thresholds(kProbabilities, no_positives_in_2, 3, {.1, .5, .9}, 0.5)[2] == .5);
  CHECK(best_thresholds(kProbabilities, no_positives_in_2, 3, {.1, .5, .9}, 0.3)[2] == .3);
  // The thresholds found give the F1 the search promised.
  const MultilabelReport tuned = multilabel_report(kProbabilities, kTargets, 3, exact);
  CHECK(tuned.per_class[0].f1 == doctest::Approx(0.8));
  CHECK(tuned.macro.f1 == doctest::Approx((0.8 + 1 + 1) / 3));

  kiln::test::expect_error_containing([] { best_thresholds({.5, .5}, {1, 2}, 2); }, {"multi-hot", "got 2"});
  kiln::test::expect_error_containing([] { multilabel_report({.5, .5}, {1, 0}, 2, {.5}); }, {"thresholds", "(2)"});
}

TEST_CASE("metrics: multi-label best global threshold maximises micro-F1 over all classes pooled") {
  // All 18 scores as one column (sklearn f1_score(Y, P >= t, average="micro") at each
  // distinct score, high to low): .9 .25, .8 .444, .7 .6, .6 .769, .55 .857, .5 .8, .4 .667,
  // .3 .7, .2 .636, .1 .583, .05 .56 -> 0.55.
  CHECK(best_global_threshold(kProbabilities, kTargets, 3) == .55);
  // On a grid: .25 / .5 / .75 give .7 / .8 / .444.
  CHECK(best_global_threshold(kProbabilities, kTargets, 3, {.25, .5, .75}) == .5);
  // .56 and .58 predict the same five (image, class) pairs: the lower wins, in either order.
  CHECK(best_global_threshold(kProbabilities, kTargets, 3, {.58, .56}) == .56);
  CHECK(best_global_threshold(kProbabilities, kTargets, 3, {.56, .58}) == .56);
  // The threshold found gives the micro-F1 the search promised.
  const MultilabelReport pooled = multilabel_report(kProbabilities, kTargets, 3, {.55, .55, .55});
  CHECK(pooled.micro.f1 == doctest::Approx(12.0 / 14));
  // No positive anywhere: the fallback, not the lowest candidate.
  const std::vector<int> no_positives(kTargets.size(), 0);
  CHECK(best_global_threshold(kProbabilities, no_positives, 3, {.1, .5, .9}, 0.4) == .4);
  kiln::test::expect_error_containing([] { best_global_threshold({.5, .5}, {1, 2}, 2); }, {"multi-hot", "got 2"});
}

// Every number against scikit-learn on 40 images x 5 classes with tied scores, written
// by tests/fixtures/multilabel_fixtures.py into multilabel_sklearn.json.
TEST_CASE("metrics: multi-label reports equal scikit-learn's on the fixture") {
  std::ifstream in(kiln::test::fixture_dir() + "/multilabel_sklearn.json");
  REQUIRE(in.good());
  const nlohmann::json f = nlohmann::json::parse(in);
  const int64_t K = f["K"].get<int64_t>();
  const auto P = f["probabilities"].get<std::vector<double>>();
  const auto Y = f["targets"].get<std::vector<int>>();
  CHECK(label_ranking_loss(P, Y, K) == doctest::Approx(f["label_ranking_loss"].get<double>()).epsilon(1e-12));
  CHECK(coverage_error(P, Y, K) == doctest::Approx(f["coverage_error"].get<double>()).epsilon(1e-12));
  for (const nlohmann::json& c : f["cases"]) {
    const DecisionRule rule = DecisionRule::from_json(c["rule"]);
    CAPTURE(rule.describe());
    CHECK(decide(P, K, rule) == c["decisions"].get<std::vector<int>>());
    const MultilabelReport r = multilabel_report(P, Y, K, rule);
    const auto check_average = [](const AveragedMetrics& got, const nlohmann::json& want) {
      CHECK(got.precision == doctest::Approx(want[0].get<double>()).epsilon(1e-12));
      CHECK(got.recall == doctest::Approx(want[1].get<double>()).epsilon(1e-12));
      CHECK(got.f1 == doctest::Approx(want[2].get<double>()).epsilon(1e-12));
    };
    check_average(r.micro, c["micro"]);
    check_average(r.macro, c["macro"]);
    check_average(r.weighted, c["weighted"]);
    check_average(r.samples, c["samples"]);
    for (int64_t k = 0; k < K; ++k) {
      CAPTURE(k);
      CHECK(r.per_class[k].precision == doctest::Approx(c["per_class"]["precision"][k].get<double>()));
      CHECK(r.per_class[k].recall == doctest::Approx(c["per_class"]["recall"][k].get<double>()));
      CHECK(r.per_class[k].f1 == doctest::Approx(c["per_class"]["f1"][k].get<double>()));
      CHECK(r.per_class[k].support == c["per_class"]["support"][k].get<int64_t>());
      CHECK(r.per_class[k].average_precision ==
            doctest::Approx(f["average_precision"][k].get<double>()).epsilon(1e-12));
    }
    CHECK(r.hamming_loss == doctest::Approx(c["hamming_loss"].get<double>()).epsilon(1e-12));
    CHECK(r.subset_accuracy == doctest::Approx(c["subset_accuracy"].get<double>()).epsilon(1e-12));
    CHECK(r.mean_average_precision == doctest::Approx(f["mAP"].get<double>()).epsilon(1e-12));
    CHECK(r.label_ranking_loss == doctest::Approx(f["label_ranking_loss"].get<double>()).epsilon(1e-12));
    CHECK(r.to_table().find("mAP") != std::string::npos);
  }
}

TEST_CASE("metrics: decision rules, and AP of a class without positives") {
  // Rows: nothing passes 0.5 in row 0; row 1 passes two classes.
  const std::vector<double> P = {.2, .4, .1, .9, .6, .3};
  DecisionRule rule;
  rule.thresholds = {.5, .5, .5};
  CHECK(decide(P, 3, rule) == std::vector<int>{0, 0, 0, 1, 1, 0});
  rule.at_least_one = true;
  CHECK(decide(P, 3, rule) == std::vector<int>{0, 1, 0, 1, 1, 0});
  CHECK(rule.describe() == "threshold 0.5 + at least one");
  rule.top_k = 1;
  CHECK(decide(P, 3, rule) == std::vector<int>{0, 1, 0, 1, 0, 0});
  CHECK(rule.describe() == "top-1");
  CHECK(DecisionRule::from_json(rule.to_json()).top_k == 1);
  // Class 2 never occurs: its AP is undefined and mAP is the mean of the other two.
  const std::vector<int> Y = {0, 1, 0, 1, 0, 0};
  CHECK(std::isnan(average_precision({.1, .3}, {0, 0})));
  const MultilabelReport r = multilabel_report(P, Y, 3, std::vector<double>{.5, .5, .5});
  CHECK(std::isnan(r.per_class[2].average_precision));
  // Class 0: its positive (.9) outranks its negative (.2): AP 1. Class 1: its negative (.6)
  // outranks its positive (.4): precision 1/2 when the recall reaches 1, AP 0.5.
  CHECK(r.per_class[0].average_precision == doctest::Approx(1.0));
  CHECK(r.per_class[1].average_precision == doctest::Approx(0.5));
  CHECK(r.mean_average_precision == doctest::Approx(0.75));
  CHECK(r.to_json()["per_class"][2]["average_precision"].is_null());
}
