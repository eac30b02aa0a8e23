// Softmax and the losses where the op table cannot reach: values against torch's
// formulas, and the error messages at the boundary.
//
// The expected numbers are what PyTorch 1.13 (Debian's python3-torch) returns, in
// float64, for the torch expression named in each test, e.g.
//   F.cross_entropy(x, y, weight=w, label_smoothing=0.1)           -> 0.7219480305756878
//   F.binary_cross_entropy_with_logits(a, t, pos_weight=pw)        -> 0.7431734280265491
// They also follow by hand from ATen's formulas (aten/src/ATen/native/LossNLL.cpp):
//   nll_i    = -w[y_i] * log_softmax(x_i)[y_i]
//   smooth_i = -sum_k w[k] * log_softmax(x_i)[k]
//   mean: (1 - eps) * sum(nll) / sum_i w[y_i] + (eps / K) * sum(smooth) / sum_i w[y_i]
// and BCE = -(pw * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd/tape.h"
#include "engine/ops/loss.h"
#include "engine/ops/softmax.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

namespace {

const Tensor logits_3x3() { return from_vector({1.0, 2.0, 3.0, 1.0, -1.0, 0.5, 0.0, 0.3, -0.7}, {3, 3}, {DType::f64}); }
const Tensor labels_3() { return from_vector({2, 0, 1}, {3}, {DType::i64}); }
const Tensor weights_3() { return from_vector({1.0, 2.0, 0.5}, {3}, {DType::f64}); }

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tolerance = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(tolerance));
  }
}

}  // namespace

TEST_CASE("softmax: rows sum to one, and log_softmax is its log") {
  Rng rng(3);
  const Tensor x = uniform({2, 3, 4, 5}, -3, 3, rng, {DType::f64});
  const std::vector<double> y = softmax(x, 1).to_vector(), log_y = log_softmax(x, 1).to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t hw = 0; hw < 20; ++hw) {
      double total = 0;
      for (int64_t c = 0; c < 3; ++c) total += y[(n * 3 + c) * 20 + hw];
      CHECK(total == doctest::Approx(1.0).epsilon(1e-14));
    }
  for (size_t i = 0; i < y.size(); ++i) CHECK(std::log(y[i]) == doctest::Approx(log_y[i]).epsilon(1e-12));
  // Huge logits do not overflow: the max is subtracted first.
  check_close(softmax(from_vector({1000.0, 1000.0}, {2}, {DType::f64})).to_vector(), {0.5, 0.5});
  const Tensor nhwc = softmax(x.to(Layout::nhwc), 1);
  CHECK(nhwc.layout() == Layout::nhwc);
  check_close(nhwc.to_vector(), y);
}

TEST_CASE("cross_entropy: values with class weights and label smoothing match torch") {
  const Tensor x = logits_3x3(), y = labels_3(), w = weights_3();
  CHECK(cross_entropy(x, y).item() == doctest::Approx(0.5695444730479905).epsilon(1e-12));
  CrossEntropyOptions weighted;
  weighted.class_weights = w;
  CHECK(cross_entropy(x, y, weighted).item() == doctest::Approx(0.6431145634226805).epsilon(1e-12));
  CrossEntropyOptions smoothed;
  smoothed.label_smoothing = 0.1;
  CHECK(cross_entropy(x, y, smoothed).item() == doctest::Approx(0.6451000286035461).epsilon(1e-12));
  CrossEntropyOptions both = weighted;
  both.label_smoothing = 0.1;
  CHECK(cross_entropy(x, y, both).item() == doctest::Approx(0.7219480305756878).epsilon(1e-12));
  both.reduction = Reduction::sum;
  CHECK(cross_entropy(x, y, both).item() == doctest::Approx(2.5268181070149067).epsilon(1e-12));
  both.reduction = Reduction::none;
  const Tensor per_sample = cross_entropy(x, y, both);
  CHECK(per_sample.shape() == Shape{3});
  check_close(per_sample.to_vector(), {0.36431004651848226, 0.7058728683026905, 1.456635192193734});
}

TEST_CASE("cross_entropy: gradient with class weights and label smoothing matches torch") {
  Tensor x = logits_3x3();
  x.set_requires_grad(true);
  CrossEntropyOptions options;
  options.class_weights = weights_3();
  options.label_smoothing = 0.1;
  cross_entropy(x, labels_3(), options).backward();
  // d loss / d x_ij = [(1 - eps) w[y_i] (p_ij - [j = y_i]) + (eps / K)(p_ij sum_k w_k - w_j)] / sum_i w[y_i]
  check_close(x.grad().to_vector(),
              {0.005052568989490165, 0.020575085789824383, -0.025627654779314574, -0.09990515918557444,
               0.0035210968002990684, 0.09638406238527535, 0.1828632622729296, -0.2736379500047483,
               0.09077468773181863},
              1e-10);
}

TEST_CASE("cross_entropy: bad targets are errors that name the op and the shapes") {
  const Tensor x = logits_3x3();
  test::expect_error_containing([&] { cross_entropy(x, from_vector({0, 1}, {2}, {DType::i64})); },
                                {"cross_entropy", "target", "(3, 3)", "(2,)"});
  test::expect_error_containing([&] { cross_entropy(x, from_vector({0, 3, 1}, {3}, {DType::i64})); },
                                {"cross_entropy", "target[1] = 3", "out of range", "3 classes", "(3, 3)"});
  test::expect_error_containing([&] { cross_entropy(x, from_vector({0, -1, 1}, {3}, {DType::i64})); },
                                {"cross_entropy", "target[1] = -1"});
  test::expect_error_containing([&] { cross_entropy(x, from_vector({0, 1, 2}, {3}, {DType::f32})); },
                                {"cross_entropy", "i64", "f32"});
  test::expect_error_containing([&] { cross_entropy(from_vector({1, 2, 3}, {3}, {DType::f64}), labels_3()); },
                                {"cross_entropy", "logits", "(N, K)", "(3,)"});
  CrossEntropyOptions bad_weights;
  bad_weights.class_weights = from_vector({1.0, 2.0}, {2}, {DType::f64});
  test::expect_error_containing([&] { cross_entropy(x, labels_3(), bad_weights); },
                                {"cross_entropy", "class_weights", "(K) = (3)", "(2,)"});
  CrossEntropyOptions bad_smoothing;
  bad_smoothing.label_smoothing = 1.5;
  test::expect_error_containing([&] { cross_entropy(x, labels_3(), bad_smoothing); },
                                {"cross_entropy", "label_smoothing"});
}

TEST_CASE("binary_cross_entropy_with_logits: pos_weight matches torch") {
  const Tensor x = from_vector({-2.0, 0.5, 3.0, -0.25}, {2, 2}, {DType::f64});
  const Tensor t = from_vector({0.0, 1.0, 0.3, 0.8}, {2, 2}, {DType::f64});
  BceOptions options;
  options.pos_weight = from_vector({2.0, 0.5}, {2}, {DType::f64});
  options.reduction = Reduction::none;
  check_close(binary_cross_entropy_with_logits(x, t, options).to_vector(),
              {0.12692801104297252, 0.23703849209005332, 2.1631635570458667, 0.44556365192730607});
  options.reduction = Reduction::mean;
  Tensor x_leaf = x.detach();
  x_leaf.set_requires_grad(true);
  const Tensor loss = binary_cross_entropy_with_logits(x_leaf, t, options);
  CHECK(loss.item() == doctest::Approx(0.7431734280265496).epsilon(1e-12));
  loss.backward();
  // d loss / dx = [(1 - t) - (1 + (pw - 1) t) sigmoid(-x)] / 4
  check_close(x_leaf.grad().to_vector(),
              {0.02980073050552942, -0.047192583599768176, 0.1595865912172908, -0.034326475132869724}, 1e-10);
  // Extreme logits stay finite (softplus in its stable form).
  const Tensor extreme = binary_cross_entropy_with_logits(from_vector({-500.0, 500.0}, {2}, {DType::f64}),
                                                          from_vector({1.0, 0.0}, {2}, {DType::f64}));
  CHECK(extreme.item() == doctest::Approx(500.0));
}

TEST_CASE("binary_cross_entropy_with_logits: bad inputs are errors that name the op") {
  const Tensor x = from_vector({0.0, 1.0, 2.0, 3.0}, {2, 2}, {DType::f64});
  test::expect_error_containing(
      [&] { binary_cross_entropy_with_logits(x, from_vector({0.0, 1.0}, {2}, {DType::f64})); },
      {"binary_cross_entropy_with_logits", "target", "(2, 2)", "(2,)"});
  BceOptions options;
  options.pos_weight = from_vector({1.0, 2.0, 3.0}, {3}, {DType::f64});
  test::expect_error_containing([&] { binary_cross_entropy_with_logits(x, x, options); },
                                {"binary_cross_entropy_with_logits", "pos_weight", "(K) = (2)", "(3,)"});
}

// sigmoid_focal_loss against torchvision.ops.sigmoid_focal_loss in float64; the numbers
// are printed by tests/fixtures/loss_values.py (torch 1.13, torchvision 0.14).
TEST_CASE("sigmoid_focal_loss: values and gradients match torchvision") {
  const Tensor x = from_vector({-2.0, 0.5, 3.0, -0.25, 1.5, -4.0}, {2, 3}, {DType::f64});
  const Tensor t = from_vector({0.0, 1.0, 0.3, 0.8, 0.0, 1.0}, {2, 3}, {DType::f64});
  struct Case {
    double gamma, alpha;
    std::vector<double> none;
    double mean;
    std::vector<double> grad;
  };
  const std::vector<Case> cases = {
      {2.0, 0.25,
       {0.0013526721264302832, 0.016893372629375906, 0.5979106738937995, 0.07840415524249139, 0.8529542367143825,
        0.9687268094893369},
       0.4193736533493027,
       {0.0006088675244240963, -0.005747374889621433, 0.035554864303773595, -0.013282524919184552,
        0.12017808593379503, -0.045266493878534805}},
      {0.5, -1.0,
       {0.04382288099120447, 0.2912934651463975, 1.7731114124736114, 0.5687725399863826, 1.5384149093166632,
        3.9818503200776685},
       1.366210921331988,
       {0.010075877801608955, -0.053772755476015455, 0.09367630493129814, -0.057274022410088624,
        0.14659541397556508, -0.1681585938413276}},
      // gamma = 0, no alpha: plain BCE (the same numbers as binary_cross_entropy_with_logits).
      {0.0, -1.0,
       {0.1269280110429726, 0.4740769841801067, 2.1485873515737417, 0.7759394198788436, 1.7014132779827524,
        4.0181499279178094},
       1.5408491620960376,
       {0.019867153670352924, -0.06292344479969089, 0.10876235447040557, -0.06036275014763302,
        0.1362624126989406, -0.16366896500631806}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.gamma);
    FocalOptions options;
    options.gamma = c.gamma;
    options.alpha = c.alpha;
    options.reduction = Reduction::none;
    check_close(sigmoid_focal_loss(x, t, options).to_vector(), c.none, 1e-10);
    options.reduction = Reduction::mean;
    Tensor x_leaf = x.detach();
    x_leaf.set_requires_grad(true);
    const Tensor loss = sigmoid_focal_loss(x_leaf, t, options);
    CHECK(loss.item() == doctest::Approx(c.mean).epsilon(1e-10));
    loss.backward();
    check_close(x_leaf.grad().to_vector(), c.grad, 1e-9);
  }
  // gamma = 0 without alpha is BCE.
  CHECK(binary_cross_entropy_with_logits(x, t).item() == doctest::Approx(1.5408491620960376).epsilon(1e-12));
}

TEST_CASE("sigmoid_focal_loss: bad options are errors that name the op") {
  const Tensor x = from_vector({0.0, 1.0}, {2}, {DType::f64});
  FocalOptions options;
  options.gamma = -1;
  test::expect_error_containing([&] { sigmoid_focal_loss(x, x, options); }, {"sigmoid_focal_loss", "gamma"});
  options.gamma = 2;
  options.alpha = 1.5;
  test::expect_error_containing([&] { sigmoid_focal_loss(x, x, options); }, {"sigmoid_focal_loss", "alpha"});
  test::expect_error_containing([&] { sigmoid_focal_loss(x, from_vector({0.0}, {1}, {DType::f64})); },
                                {"sigmoid_focal_loss", "target"});
}
