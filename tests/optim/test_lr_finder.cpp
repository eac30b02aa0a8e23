// The lr finder on a problem whose answer is known: gradient descent on the
// quadratic loss 0.5 * a * w^2 converges for lr < 2 / a and diverges beyond, so
// the sweep must stop past 2 / a and suggest an lr below it.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/optim/lr_finder.h"
#include "test_util.h"

using namespace kiln;

namespace {
optim::LrFinderResult find_on_quadratic(double curvature, const optim::LrFinderOptions& options) {
  double w = 1.0;
  return optim::run_lr_finder(
      [&](double lr) {
        w -= lr * curvature * w;  // one gradient step on 0.5 a w^2
        return 0.5 * curvature * w * w;
      },
      options);
}
}  // namespace

TEST_CASE("lr finder: sweeps exponentially, stops on divergence and suggests a stable lr") {
  optim::LrFinderOptions options;
  options.start_lr = 1e-4;
  options.end_lr = 100;
  options.steps = 120;
  const double curvature = 4.0;  // stable for lr < 0.5
  const optim::LrFinderResult result = find_on_quadratic(curvature, options);
  CHECK(result.diverged);
  REQUIRE(result.lrs.size() >= 3);
  CHECK(result.lrs.size() < 120);
  CHECK(result.lrs.front() == doctest::Approx(1e-4));
  CHECK(result.lrs[1] / result.lrs[0] == doctest::Approx(std::pow(1e6, 1.0 / 119)));
  CHECK(result.lrs.back() > 2.0 / curvature);  // it only blows up once past the stability limit
  CHECK(result.suggested_lr > 1e-3);
  CHECK(result.suggested_lr < 2.0 / curvature);
  CHECK(result.losses[result.suggested_index] < result.losses.front());
}

TEST_CASE("lr finder: runs every step when the loss never diverges") {
  optim::LrFinderOptions options;
  options.start_lr = 1e-3;
  options.end_lr = 1e-1;
  options.steps = 20;
  const optim::LrFinderResult result = find_on_quadratic(1.0, options);
  CHECK_FALSE(result.diverged);
  CHECK(result.lrs.size() == 20);
  CHECK(result.lrs.back() == doctest::Approx(1e-1));
  test::expect_error_containing([] { optim::run_lr_finder([](double) { return 0.0; }, {1.0, 0.5}); },
                                {"start_lr < end_lr"});
}

TEST_CASE("lr finder: the SVG plot has a log-x axis, labelled axes and the suggestion") {
  optim::LrFinderOptions options;
  options.start_lr = 1e-4;
  options.end_lr = 100;
  const std::string svg = optim::lr_finder_svg(find_on_quadratic(4.0, options));
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(svg.find("learning rate (log scale)") != std::string::npos);
  CHECK(svg.find("smoothed loss") != std::string::npos);
  CHECK(svg.find(">1e-4<") != std::string::npos);
  CHECK(svg.find(">1e0<") != std::string::npos);
  CHECK(svg.find("<polyline") != std::string::npos);
  CHECK(svg.find("suggested lr") != std::string::npos);
  CHECK(optim::lr_finder_svg({}).find("no steps recorded") != std::string::npos);
}
