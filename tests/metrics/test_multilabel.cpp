// Multi-label metrics against hand-computed values (numpy 1.24 gave the same numbers:
// pred = P >= 0.5; tp = (pred & (Y==1)).sum(0); fp, fn likewise; then the formulas).
#include <doctest/doctest.h>

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
  // Equal F1 at 0.7 and 0.75 (both predict images 0 and 1 for column 0): the higher wins.
  CHECK(best_thresholds(kProbabilities, kTargets, 3, {.7, .75})[0] == .75);
  // The thresholds found give the F1 the search promised.
  const MultilabelReport tuned = multilabel_report(kProbabilities, kTargets, 3, exact);
  CHECK(tuned.per_class[0].f1 == doctest::Approx(0.8));
  CHECK(tuned.macro.f1 == doctest::Approx((0.8 + 1 + 1) / 3));

  kiln::test::expect_error_containing([] { best_thresholds({.5, .5}, {1, 2}, 2); }, {"multi-hot", "got 2"});
  kiln::test::expect_error_containing([] { multilabel_report({.5, .5}, {1, 0}, 2, {.5}); }, {"thresholds", "(2)"});
}
