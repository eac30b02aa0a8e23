// Classification metrics against hand-computed values. The same numbers were also
// produced with numpy 1.24 by an independent route (the comment next to each check
// gives the numpy expression): the confusion matrix by np.add.at, ROC points by brute
// force per threshold, AUC by the Mann-Whitney pair count. sklearn was not available
// where these were written; the formulas restate its definitions (docs/metrics.md).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/metrics/accumulator.h"
#include "engine/metrics/classification.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;
using namespace kiln::metrics;

namespace {

// The worked example of docs/metrics.md: N = 10 images, K = 3 classes. Rows are
// probabilities; the argmax predicts 0,0,1,0, 1,1,1, 2,2,0.
//   S = np.array([[.7,.2,.1],[.5,.3,.2],[.3,.6,.1],[.4,.3,.3],[.2,.7,.1],
//                 [.3,.5,.2],[.1,.6,.3],[.1,.2,.7],[.2,.2,.6],[.5,.3,.2]])
//   y = np.array([0,0,0,0,1,1,1,2,2,2])
const std::vector<double> kScores = {.7, .2, .1, .5, .3, .2, .3, .6, .1, .4, .3, .3, .2, .7, .1,
                                     .3, .5, .2, .1, .6, .3, .1, .2, .7, .2, .2, .6, .5, .3, .2};
const std::vector<int64_t> kLabels = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};

void check_vector(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i);
    if (std::isinf(want[i]))
      CHECK(got[i] == want[i]);  // Approx cannot compare infinities
    else
      CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("metrics: confusion matrix, per-class and averaged precision/recall/F1 of a hand-checked example") {
  const ClassificationReport r = classification_report(kScores, kLabels, 3, {"cat", "dog", "bird"});
  // C = np.zeros((3,3),int); np.add.at(C, (y, S.argmax(1)), 1)
  CHECK(r.confusion_matrix == std::vector<std::vector<int64_t>>{{3, 1, 0}, {0, 3, 0}, {1, 0, 2}});
  CHECK(r.count == 10);
  CHECK(r.accuracy == doctest::Approx(0.8));  // trace 8 / 10
  // precision = TP / column sum, recall = TP / row sum:
  //   cat 3/4, 3/4;  dog 3/4, 3/3;  bird 2/2, 2/3
  REQUIRE(r.per_class.size() == 3);
  CHECK(r.per_class[0].name == "cat");
  CHECK(r.per_class[0].precision == doctest::Approx(0.75));
  CHECK(r.per_class[0].recall == doctest::Approx(0.75));
  CHECK(r.per_class[0].f1 == doctest::Approx(0.75));
  CHECK(r.per_class[1].precision == doctest::Approx(0.75));
  CHECK(r.per_class[1].recall == doctest::Approx(1.0));
  CHECK(r.per_class[1].f1 == doctest::Approx(6.0 / 7.0));  // 2 * .75 * 1 / 1.75 = 0.8571428571428571
  CHECK(r.per_class[2].precision == doctest::Approx(1.0));
  CHECK(r.per_class[2].recall == doctest::Approx(2.0 / 3.0));
  CHECK(r.per_class[2].f1 == doctest::Approx(0.8));  // 2 * 1 * (2/3) / (5/3)
  CHECK(r.per_class[0].support == 4);
  CHECK(r.per_class[1].support == 3);
  CHECK(r.per_class[2].support == 3);
  // numpy: prec.mean(), rec.mean(), f1.mean() -> 0.8333333333333334 0.8055555555555555 0.8023809523809525
  CHECK(r.macro.precision == doctest::Approx(0.8333333333333334));
  CHECK(r.macro.recall == doctest::Approx(0.8055555555555555));
  CHECK(r.macro.f1 == doctest::Approx(0.8023809523809525));
  // numpy: (prec*sup).sum()/sup.sum(), ... -> 0.825 0.8 0.7971428571428572
  CHECK(r.weighted.precision == doctest::Approx(0.825));
  CHECK(r.weighted.recall == doctest::Approx(0.8));  // weighted recall is always the accuracy
  CHECK(r.weighted.f1 == doctest::Approx(0.7971428571428572));
}

TEST_CASE("metrics: top-k accuracy ranks ties toward the lower class index") {
  // Only image 9 (bird, scores .5 .3 .2) has its true class third: top-2 = 9/10.
  CHECK(top_k_accuracy(kScores, kLabels, 3, 1) == doctest::Approx(0.8));
  CHECK(top_k_accuracy(kScores, kLabels, 3, 2) == doctest::Approx(0.9));
  CHECK(top_k_accuracy(kScores, kLabels, 3, 3) == doctest::Approx(1.0));
  const ClassificationReport r = classification_report(kScores, kLabels, 3, {}, {1, 2, 5});
  CHECK(r.top_k_accuracy.size() == 2);  // k = 5 > K is skipped
  CHECK(r.top_k_accuracy.at(2) == doctest::Approx(0.9));
  CHECK(r.class_names == std::vector<std::string>{"0", "1", "2"});

  // One row with a tie between classes 1 and 2: class 1 ranks second, class 2 third.
  const std::vector<double> tied = {.4, .3, .3};
  CHECK(top_k_accuracy(tied, {1}, 3, 2) == 1.0);
  CHECK(top_k_accuracy(tied, {2}, 3, 2) == 0.0);
  // An all-equal row predicts class 0, as np.argmax does, and top-1 agrees with it.
  CHECK(predict_classes({.5, .5}, 2) == std::vector<int64_t>{0});
  CHECK(top_k_accuracy({.5, .5}, {0}, 2, 1) == 1.0);
  CHECK(top_k_accuracy({.5, .5}, {1}, 2, 1) == 0.0);
}

TEST_CASE("metrics: ROC curves with tied scores and AUC per class and macro") {
  const ClassificationReport r = classification_report(kScores, kLabels, 3);
  // Class 0 ("cat" vs rest), scores of column 0 from high to low:
  //   .7 P | .5 P, .5 N | .4 P | .3 P, .3 N | .2 N, .2 N | .1 N, .1 N   (4 positives, 6 negatives)
  // The two ties (.5 and .3) each give one diagonal step. numpy, per threshold v in
  // np.unique(s)[::-1]: tpr = (s[t] >= v).mean(), fpr = (s[~t] >= v).mean():
  const double inf = std::numeric_limits<double>::infinity();
  check_vector(r.roc[0].thresholds, {inf, .7, .5, .4, .3, .2, .1});
  check_vector(r.roc[0].tpr, {0, .25, .5, .75, 1, 1, 1});
  check_vector(r.roc[0].fpr, {0, 0, 1.0 / 6, 1.0 / 6, 2.0 / 6, 4.0 / 6, 1});
  // Trapezoids: 1/6 * (.25+.5)/2 + 1/6 * (.75+1)/2 + 2/3 * 1 = 0.875. Mann-Whitney
  // check: ((pos > neg) + 0.5 * (pos == neg)).mean() over the 24 pairs = 21/24 = 0.875.
  CHECK(r.roc[0].auc == doctest::Approx(0.875));
  // Classes 1 and 2 (np.trapz(tpr, fpr) and the Mann-Whitney count agree):
  check_vector(r.roc[1].tpr, {0, 1.0 / 3, 2.0 / 3, 1, 1, 1});
  check_vector(r.roc[1].fpr, {0, 0, 1.0 / 7, 1.0 / 7, 4.0 / 7, 1});
  CHECK(r.roc[1].auc == doctest::Approx(0.9285714285714286));
  check_vector(r.roc[2].thresholds, {inf, .7, .6, .3, .2, .1});
  CHECK(r.roc[2].auc == doctest::Approx(0.8571428571428571));
  CHECK(r.macro_auc == doctest::Approx(0.8869047619047619));  // np.mean of the three
  // np.average(aucs, weights=[4, 3, 3]) = (4*.875 + 3*.9285714 + 3*.8571429) / 10
  CHECK(r.weighted_auc == doctest::Approx(0.8857142857142857));

  // All scores equal: one diagonal step from (0, 0) to (1, 1), AUC 1/2 (a coin flip).
  const RocCurve flat = roc_curve({.5, .5, .5, .5}, {true, false, true, false});
  check_vector(flat.fpr, {0, 1});
  check_vector(flat.tpr, {0, 1});
  CHECK(flat.auc == doctest::Approx(0.5));
  // A perfect ranking has AUC 1; a reversed one 0.
  CHECK(roc_curve({.9, .8, .2, .1}, {true, true, false, false}).auc == doctest::Approx(1.0));
  CHECK(roc_curve({.9, .8, .2, .1}, {false, false, true, true}).auc == doctest::Approx(0.0));
}

TEST_CASE("metrics: a class never predicted and a class never present (zero_division = 0, AUC undefined)") {
  // K = 3; class 1 is in the labels but never predicted; class 2 is neither.
  const std::vector<double> scores = {.8, .1, .1, .6, .3, .1, .2, .7, .1, .4, .35, .25};
  const std::vector<int64_t> labels = {0, 1, 1, 0};  // predictions 0, 0, 1, 0
  const ClassificationReport r = classification_report(scores, labels, 3);
  CHECK(r.confusion_matrix == std::vector<std::vector<int64_t>>{{2, 0, 0}, {1, 1, 0}, {0, 0, 0}});
  // class 0: P = 2/3, R = 1; class 1: P = 1, R = 1/2; class 2: 0/0 everywhere -> 0.
  CHECK(r.per_class[0].precision == doctest::Approx(2.0 / 3));
  CHECK(r.per_class[1].recall == doctest::Approx(0.5));
  CHECK(r.per_class[2].precision == 0.0);
  CHECK(r.per_class[2].recall == 0.0);
  CHECK(r.per_class[2].f1 == 0.0);
  CHECK(r.per_class[2].support == 0);
  // The absent class pulls the macro mean down (sklearn with labels=range(K));
  // weighted averages give it weight 0. F1: class 0 = 0.8, class 1 = 2/3.
  CHECK(r.macro.f1 == doctest::Approx((0.8 + 2.0 / 3) / 3));
  CHECK(r.weighted.f1 == doctest::Approx((2 * 0.8 + 2 * 2.0 / 3) / 4));
  // Class 2 has no positives: no ROC curve, so macro AUC averages classes 0 and 1 only.
  CHECK(std::isnan(r.roc[2].auc));
  CHECK(std::isnan(r.roc[2].tpr.back()));
  CHECK(!std::isnan(r.macro_auc));
  CHECK(r.macro_auc == doctest::Approx((r.roc[0].auc + r.roc[1].auc) / 2));
  CHECK(r.to_json()["per_class"][2]["auc"].is_null());
  CHECK(r.to_table().find("      -") != std::string::npos);  // undefined AUC prints as "-"

  // Class-1 precision when never predicted: predict everything as class 0.
  const ClassificationReport never = classification_report({.9, .1, .8, .2}, {0, 1}, 2);
  CHECK(never.per_class[1].precision == 0.0);
  CHECK(never.per_class[1].f1 == 0.0);
}

TEST_CASE("metrics: accumulator softmaxes logits in double, across batches") {
  MetricAccumulator acc(3);
  // Logits log(p) give back p: the first five rows of the example, then the rest.
  std::vector<double> logits;
  for (double p : kScores) logits.push_back(std::log(p) + 100.0);  // a shift must not change the softmax
  const Tensor all = from_vector(logits, {10, 3}, {DType::f64});
  std::vector<double> label_values(kLabels.begin(), kLabels.end());
  const Tensor labels = from_vector(label_values, {10}, {DType::i64});
  acc.add(all.narrow0(0, 5), labels.narrow0(0, 5));
  acc.add(all.narrow0(5, 5), labels.narrow0(5, 5));
  CHECK(acc.count() == 10);
  CHECK(test::max_abs_diff(acc.probabilities(), kScores) < 1e-12);
  const ClassificationReport r = acc.report({"cat", "dog", "bird"});
  CHECK(r.confusion_matrix == std::vector<std::vector<int64_t>>{{3, 1, 0}, {0, 3, 0}, {1, 0, 2}});
  CHECK(r.accuracy == doctest::Approx(0.8));
  // The AUC is not 0.875 here, and rightly so: softmax(log p) rounds .3 of one row and
  // .3 of another to different last bits, which breaks the tie the example relies on.
  // The report is exactly the one of the stored probabilities.
  CHECK(r.roc[0].auc == classification_report(acc.probabilities(), acc.labels(), 3).roc[0].auc);
  // Shapes are checked at the boundary and the message names the tensor.
  test::expect_error_containing([&] { acc.add(zeros({2, 4}), zeros({2})); }, {"logits", "(N, K)", "(2, 4)"});
  test::expect_error_containing([&] { acc.add(zeros({2, 3}), zeros({3})); }, {"labels", "(3,)"});
  test::expect_error_containing([&] { acc.add(zeros({1, 3}), full({1}, 3)); }, {"label 3", "[0, 3)"});
}

TEST_CASE("metrics: report to_json, write_csv and to_table") {
  const ClassificationReport r = classification_report(kScores, kLabels, 3, {"cat", "dog", "T-shirt/top"});
  const nlohmann::json j = r.to_json();
  CHECK(j["count"] == 10);
  CHECK(j["confusion_matrix"][2][0] == 1);
  CHECK(j["per_class"][1]["f1"].get<double>() == doctest::Approx(6.0 / 7));
  CHECK(j["roc"][0]["thresholds"][0].is_null());  // +inf has no JSON spelling
  CHECK(j["macro_avg"]["auc"].get<double>() == doctest::Approx(0.8869047619047619));

  const std::string dir = (std::filesystem::temp_directory_path() / "kiln_test_metrics_csv").string();
  std::filesystem::remove_all(dir);
  r.write_csv(dir);
  const std::string per_class = read_text(dir + "/per_class.csv");
  CHECK(per_class.rfind("class,precision,recall,f1,support,auc\ncat,0.75,0.75,0.75,4,0.875\n", 0) == 0);
  CHECK(read_text(dir + "/confusion_matrix.csv") ==
        "true\\predicted,cat,dog,T-shirt/top\ncat,3,1,0\ndog,0,3,0\nT-shirt/top,1,0,2\n");
  CHECK(read_text(dir + "/roc_cat.csv").rfind("threshold,fpr,tpr\ninf,0,0\n0.7,0,0.25\n", 0) == 0);
  CHECK(std::filesystem::exists(dir + "/roc_T-shirt_top.csv"));  // '/' cannot be in a file name
  std::filesystem::remove_all(dir);

  const std::string table = r.to_table();
  MESSAGE("\n" << table);
  CHECK(table.find("T-shirt/top") != std::string::npos);
  CHECK(table.find("macro avg") != std::string::npos);
  CHECK(table.find("top-2 accuracy") == std::string::npos);  // only k = 1 and 5 were asked, and 5 > K
}
