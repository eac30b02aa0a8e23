// Learning-rate schedules against torch.optim.lr_scheduler: 100 steps of each,
// lr = 0.1 * lr_factor(step) compared with optimizer.param_groups[0]['lr'] before
// each torch optimizer step. Also the CLI-string factory and its errors.
// Fixture: tests/fixtures/make_fixtures.py, lr_schedule_cases().
#include <doctest/doctest.h>

#include <cmath>

#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#include "weights/safetensors.h"

using namespace kiln;

TEST_CASE("lr schedules: every schedule matches torch for 100 steps") {
  const SafeTensors f = load_safetensors(test::fixture_dir() + "/optim.safetensors");
  REQUIRE_MESSAGE(f.metadata.at("magic") == "kiln-fixture", f.metadata.at("hint"));
  optim::LrScheduleContext context;
  context.base_lr = 0.1;  // the torch optimizer's lr
  context.total_steps = 100;
  // fixture name -> the kiln spec of the same schedule (make_fixtures.py, lr_schedule_cases)
  const std::vector<std::pair<std::string, std::string>> specs = {
      {"step", "step:step_size=30,gamma=0.1"},
      {"multistep", "multistep:milestones=20,50,80,gamma=0.5"},
      {"exponential", "exponential:gamma=0.97"},
      {"cosine", "cosine:warmup=10,min_factor=0.05"},
      {"cyclic_triangular", "cyclic:base_lr=1e-3,max_lr=0.1,step_size_up=15,step_size_down=10"},
      {"cyclic_triangular2", "cyclic:mode=triangular2,base_lr=1e-3,max_lr=0.1,step_size_up=12"},
      {"cyclic_exp_range", "cyclic:mode=exp_range,base_lr=1e-3,max_lr=0.1,step_size_up=10,gamma=0.99"},
      {"onecycle", "onecycle:max_lr=0.4"},
  };
  for (const auto& [name, spec] : specs) {
    CAPTURE(spec);
    const auto schedule = optim::make_lr_schedule(spec, context);
    const std::vector<double> want = f.at("lr." + name).to_vector();
    std::vector<double> got;
    for (int64_t step = 0; step < 100; ++step) got.push_back(context.base_lr * schedule->lr_factor(step));
    // torch's chainable forms multiply step by step; closed forms differ in the last bits
    CHECK(test::relative_l2(got, want) < 1e-12);
    CHECK(test::max_abs_diff(got, want) < 1e-12);
  }
}

TEST_CASE("lr schedules: scale_lr applies the factor to every group, keeping their ratio") {
  optim::ParamGroup a, b;
  a.params = {zeros({2})};
  a.lr = 0.1;
  b.params = {zeros({2})};
  b.lr = 0.01;
  optim::SGD sgd(std::vector<optim::ParamGroup>{a, b}, {});
  const auto schedule = optim::make_lr_schedule("step:step_size=2,gamma=0.5", {});
  sgd.scale_lr(schedule->lr_factor(5));
  CHECK(sgd.groups()[0].lr == doctest::Approx(0.025));
  CHECK(sgd.groups()[1].lr == doctest::Approx(0.0025));
}

TEST_CASE("lr schedules: cosine warmup starts at 0, peaks at 1 and ends at min_factor") {
  const auto schedule = optim::make_lr_schedule("cosine:warmup=500,total=1000", {});
  CHECK(schedule->lr_factor(0) == 0.0);
  CHECK(schedule->lr_factor(250) == doctest::Approx(0.5));
  CHECK(schedule->lr_factor(500) == doctest::Approx(1.0));
  CHECK(schedule->lr_factor(1000) == doctest::Approx(0.0));
  CHECK(schedule->lr_factor(5000) == doctest::Approx(0.0));  // past the end it stays at the floor
  CHECK(schedule->describe() == "cosine(warmup=500, total=1000, min_factor=0)");
}

TEST_CASE("lr schedules: onecycle starts at max_lr / 25, peaks at max_lr and holds its last lr") {
  optim::LrScheduleContext context;
  context.base_lr = 0.01;
  context.total_steps = 1000;
  const auto schedule = optim::make_lr_schedule("onecycle:max_lr=0.1", context);
  CHECK(context.base_lr * schedule->lr_factor(0) == doctest::Approx(0.1 / 25));
  CHECK(context.base_lr * schedule->lr_factor(299) == doctest::Approx(0.1));
  CHECK(context.base_lr * schedule->lr_factor(999) == doctest::Approx(0.1 / 25 / 1e4));
  CHECK(schedule->lr_factor(5000) == schedule->lr_factor(999));
  const auto three = optim::make_lr_schedule("onecycle:max_lr=0.1,three_phase=1,anneal=linear", context);
  CHECK(context.base_lr * three->lr_factor(299) == doctest::Approx(0.1));
  CHECK(context.base_lr * three->lr_factor(598) == doctest::Approx(0.1 / 25));
}

TEST_CASE("lr schedules: the factory names bad names, keys and values") {
  optim::LrScheduleContext context;
  test::expect_error_containing([&] { optim::make_lr_schedule("cosinus", context); },
                                {"unknown lr schedule 'cosinus'", "constant, cosine, cyclic"});
  test::expect_error_containing([&] { optim::make_lr_schedule("cosine:warmpu=5,total=10", context); },
                                {"cosine", "unknown key 'warmpu'", "warmup, total, min_factor"});
  test::expect_error_containing([&] { optim::make_lr_schedule("step:gamma=0.5", context); },
                                {"step", "'step_size' is required"});
  test::expect_error_containing([&] { optim::make_lr_schedule("exponential:gamma=fast", context); },
                                {"'gamma' needs a finite number", "'fast'"});
  test::expect_error_containing([&] { optim::make_lr_schedule("cyclic:max_lr=1,mode=sawtooth", context); },
                                {"triangular2", "'sawtooth'"});
  test::expect_error_containing([&] { optim::make_lr_schedule("cosine", context); },
                                {"total", "run's step count"});
  test::expect_error_containing([&] { optim::make_lr_schedule("step:step_size=3,step_size=4", context); },
                                {"'step_size' given twice"});
}

TEST_CASE("lr schedule specs: numbers beyond 2^53, inf and nan are refused before any cast to a step count") {
  // Found by tests/fuzz/fuzz_schedule.cpp: step_size=3.3e38 was cast to int64 (undefined behaviour).
  for (const char* spec : {"step:step_size=3.3e38", "cosine:warmup=1e300", "exponential:gamma=nan", "step:step_size=inf"})
    test::expect_error_containing([&] { optim::make_lr_schedule(spec, {0.1, 100}); }, {"needs a finite number"});
}

TEST_CASE("lr schedule onecycle: a div_factor of 0, or one that makes the start or final lr overflow, is refused") {
  // Found by tests/fuzz/fuzz_schedule.cpp (corpus/schedule/regression_onecycle_div_factor_0.txt):
  // div_factor=0 made the start lr inf, and the schedule's factor NaN.
  for (const char* spec : {"onecycle:max_lr=0.1,total=1000,div_factor=0", "onecycle:max_lr=0.1,final_div_factor=0",
                           "onecycle:max_lr=0.1,div_factor=-2"})
    test::expect_error_containing([&] { optim::make_lr_schedule(spec, {0.1, 1000}); },
                                  {"onecycle", "div_factor and final_div_factor must be > 0"});
  test::expect_error_containing(
      [&] { optim::make_lr_schedule("onecycle:max_lr=1e15,div_factor=1e-300", {0.1, 1000}); },
      {"onecycle", "must be finite", "div_factor=1e-300"});
  test::expect_error_containing(
      [&] { optim::make_lr_schedule("onecycle:max_lr=1,div_factor=1e-300,final_div_factor=1e-300", {0.1, 1000}); },
      {"onecycle", "final lr", "must be finite"});
}

TEST_CASE("lr schedules: settings torch refuses or that overflow give an error or a finite factor, never NaN") {
  // Each gave a NaN factor before (found while fixing the div_factor finding above).
  // onecycle with a phase of no steps: torch raises ZeroDivisionError there.
  for (const char* spec : {"onecycle:pct_start=0.001", "onecycle:total=2,pct_start=0.5"})
    test::expect_error_containing([&] { optim::make_lr_schedule(spec, {0.1, 1000}); },
                                  {"onecycle", "phase 1 has no steps", "pct_start"});
  // cyclic half cycles shorter than a step: step / cycle overflowed to inf.
  test::expect_error_containing([&] { optim::make_lr_schedule("cyclic:max_lr=1,step_size_up=1e-300", {0.1, 1000}); },
                                {"cyclic", "must be >= 1", "up=1e-300"});
  // exp_range at the foot of a cycle far into a run: height 0 times gamma^step = inf.
  const auto exp_range = optim::make_lr_schedule("cyclic:max_lr=1,mode=exp_range,gamma=1.1,step_size_up=1", {0.1, 1000});
  CHECK(exp_range->lr_factor(int64_t{1} << 40) == doctest::Approx(1.0));  // base_lr / optimizer lr
  // A phase of negative length (torch-legal): finite factors everywhere.
  const auto negative = optim::make_lr_schedule("onecycle:total=2,pct_start=0.3,max_lr=0.1", {0.1, 2});
  for (int64_t step : {int64_t{0}, int64_t{1}, int64_t{5}}) CHECK(std::isfinite(negative->lr_factor(step)));
}
