// Dynamic loss scaling (engine/optim/loss_scaler.h): an inf or nan gradient skips
// the step (weights untouched, counted) and halves the scale; growth_interval good
// steps in a row double it; the step the optimizer takes uses the unscaled gradient.
#include <doctest/doctest.h>

#include <limits>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/optim/adam.h"
#include "engine/optim/loss_scaler.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"

using namespace kiln;

namespace {

optim::SgdOptions plain_sgd() {
  optim::SgdOptions o;
  o.lr = 0.1;
  return o;
}

}  // namespace

TEST_CASE("loss scaler: scale() multiplies the loss and so every gradient, step() applies the unscaled one") {
  Tensor w = from_vector({1.0, -2.0}, {2}).set_requires_grad(true);
  optim::SGD sgd({w}, plain_sgd());
  optim::LossScalerOptions options;
  options.initial_scale = 8;
  optim::LossScaler scaler(options);
  const Tensor loss = sum(mul(w, w));  // d/dw = 2w = (2, -4)
  CHECK(scaler.scale(loss).item() == 8 * 5.0);
  scaler.scale(loss).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{16.0, -32.0});
  scaler.step(sgd);
  CHECK(scaler.found_inf().item() == 0);
  CHECK(w.to_vector()[0] == doctest::Approx(1.0 - 0.1 * 2.0));
  CHECK(w.to_vector()[1] == doctest::Approx(-2.0 + 0.1 * 4.0));
  CHECK(scaler.skipped_steps() == 0);
  CHECK(scaler.current_scale() == 8);
}

TEST_CASE("loss scaler: an inf or nan gradient skips the step, leaves the weights and halves the scale") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = from_vector({1.0, 2.0}, {2}).set_requires_grad(true);
  Tensor b = from_vector({3.0}, {1}).set_requires_grad(true);
  optim::SGD sgd({a, b}, plain_sgd());
  optim::LossScalerOptions options;
  options.initial_scale = 1024;
  optim::LossScaler scaler(options);
  for (double bad : {inf, nan, -inf}) {
    a.set_grad(from_vector({1.0, 1.0}, {2}));
    b.set_grad(from_vector({bad}, {1}));
    scaler.step(sgd);
    CHECK(scaler.found_inf().item() == 1);
    CHECK(a.to_vector() == std::vector<double>{1.0, 2.0});
    CHECK(b.to_vector() == std::vector<double>{3.0});
  }
  CHECK(scaler.skipped_steps() == 3);
  CHECK(scaler.current_scale() == 1024.0 / 8);
}

TEST_CASE("loss scaler: growth_interval good steps in a row double the scale, an overflow restarts the count") {
  Tensor w = from_vector({0.0}, {1}).set_requires_grad(true);
  optim::SGD sgd({w}, plain_sgd());
  optim::LossScalerOptions options;
  options.initial_scale = 4;
  options.growth_interval = 3;
  optim::LossScaler scaler(options);
  // Whether the step was taken, told by the skipped-step count (read here, in a test).
  auto step_with = [&](double grad) {
    const int64_t skipped_before = scaler.skipped_steps();
    w.set_grad(from_vector({grad}, {1}));
    scaler.step(sgd);
    return scaler.skipped_steps() == skipped_before;
  };
  CHECK(step_with(1.0));
  CHECK(step_with(1.0));
  CHECK(scaler.current_scale() == 4);
  CHECK(step_with(1.0));  // the third good step in a row
  CHECK(scaler.current_scale() == 8);
  CHECK(scaler.good_steps_in_a_row() == 0);
  CHECK(step_with(1.0));
  CHECK(step_with(1.0));
  CHECK_FALSE(step_with(std::numeric_limits<double>::infinity()));  // backoff and restart
  CHECK(scaler.current_scale() == 4);
  CHECK(step_with(1.0));
  CHECK(step_with(1.0));
  CHECK(scaler.current_scale() == 4);
  CHECK(step_with(1.0));
  CHECK(scaler.current_scale() == 8);
  CHECK(scaler.skipped_steps() == 1);
}

TEST_CASE("loss scaler: unscale() before clipping, once per step, bad options are refused") {
  Tensor w = from_vector({1.0}, {1}).set_requires_grad(true);
  optim::SGD sgd({w}, plain_sgd());
  optim::LossScaler scaler;  // 2^16
  w.set_grad(from_vector({65536.0 * 3}, {1}));
  scaler.unscale(sgd);
  CHECK(scaler.found_inf().item() == 0);
  CHECK(w.grad().item() == 3.0);
  CHECK_THROWS_WITH_AS(scaler.unscale(sgd), doctest::Contains("twice"), Error);
  scaler.step(sgd);  // does not divide again
  CHECK(scaler.skipped_steps() == 0);
  CHECK(w.item() == doctest::Approx(1.0 - 0.3));
  optim::LossScalerOptions bad;
  bad.backoff_factor = 1.5;
  CHECK_THROWS_WITH_AS(optim::LossScaler{bad}, doctest::Contains("backoff_factor"), Error);
}

TEST_CASE("loss scaler: a forced inf gradient leaves momentum, Adam moments and every step count as they were") {
  // Two good steps, one with an inf gradient, one good step: the optimizer must end
  // where two plain steps followed by the third would put it, state and counts included.
  for (const std::string name : {"sgd", "adamw", "nadam"}) {
    CAPTURE(name);
    optim::OptimizerOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 0.01;
    auto make = [&](const Tensor& w) { return optim::make_optimizer(name, std::vector<Tensor>{w}, o); };
    Tensor scaled_w = from_vector({1.0, -2.0, 0.5}, {3}).set_requires_grad(true);
    Tensor plain_w = from_vector({1.0, -2.0, 0.5}, {3}).set_requires_grad(true);
    auto scaled = make(scaled_w);
    auto plain = make(plain_w);
    optim::LossScalerOptions options;
    options.initial_scale = 4;
    optim::LossScaler scaler(options);
    const std::vector<std::vector<double>> grads = {{0.5, -1.0, 2.0}, {1.5, 0.25, -0.5}, {0.0, 0.0, 0.0}, {-1.0, 2.0, 1.0}};
    for (size_t step = 0; step < grads.size(); ++step) {
      std::vector<double> g = grads[step];
      const bool overflow = step == 2;
      if (overflow) g[1] = std::numeric_limits<double>::infinity();
      const double scale = scaler.current_scale();
      std::vector<double> scaled_g = g;
      for (double& x : scaled_g) x *= scale;
      scaled_w.set_grad(from_vector(scaled_g, {3}));
      scaler.step(*scaled);
      if (!overflow) {
        plain_w.set_grad(from_vector(g, {3}));
        plain->step();
      }
    }
    CHECK(scaler.skipped_steps() == 1);
    CHECK(scaler.current_scale() == 2);  // 4, halved once, no growth within 2000 steps
    CHECK(scaled_w.to_vector() == plain_w.to_vector());
    CHECK(scaled->step_count() == 3);
    const auto a = scaled->state_dict({"w"}), b = plain->state_dict({"w"});
    REQUIRE(a.size() == b.size());
    for (const auto& [key, t] : b) {
      CAPTURE(key);
      CHECK(a.at(key).to_vector() == t.to_vector());
    }
  }
}
