// Every optimizer against torch.optim: 10 steps in float64 with two parameter
// groups, a deterministic pseudo-gradient, and the whole parameter trajectory
// compared to 1e-10. Also: state_dict round trips, the registry, the no-decay
// grouping, and CUDA-vs-CPU parity of the fused updates.
// Fixture: tests/fixtures/make_fixtures.py, optim().
#include <doctest/doctest.h>

#include <cmath>

#include "engine/nn/layers.h"
#include "engine/optim/adam.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#include "weights/safetensors.h"

using namespace kiln;

namespace {

SafeTensors load_fixture() { return test::load_fixture("optim.safetensors"); }

struct OptimCase {
  std::string fixture_name, optimizer;
  optim::OptimizerOptions options;
};

// The same cases as OPTIMIZER_CASES in make_fixtures.py.
std::vector<OptimCase> cases() {
  std::vector<OptimCase> all;
  auto add = [&](const std::string& fixture_name, const std::string& optimizer, auto set) {
    optim::OptimizerOptions o;
    set(o);
    all.push_back({fixture_name, optimizer, o});
  };
  add("sgd_momentum", "sgd", [](auto& o) { o.momentum = 0.9, o.dampening = 0.2; });
  add("sgd_nesterov", "sgd", [](auto& o) { o.momentum = 0.9, o.nesterov = true; });
  add("adam", "adam", [](auto& o) { o.beta1 = 0.9, o.beta2 = 0.99, o.eps = 1e-8; });
  add("adam_amsgrad", "adam", [](auto& o) { o.beta1 = 0.8, o.beta2 = 0.95, o.eps = 1e-6, o.amsgrad = true; });
  add("adamw", "adamw", [](auto& o) { o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8; });
  add("adamw_amsgrad", "adamw", [](auto& o) { o.beta1 = 0.9, o.beta2 = 0.99, o.eps = 1e-8, o.amsgrad = true; });
  add("nadam", "nadam", [](auto& o) { o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8, o.momentum_decay = 4e-3; });
  add("radam", "radam", [](auto& o) { o.beta1 = 0.9, o.beta2 = 0.99, o.eps = 1e-8; });
  return all;
}

std::vector<Tensor> make_params(const SafeTensors& f, DType dtype, const Device& device) {
  std::vector<Tensor> params;
  for (int j = 0; j < 3; ++j) {
    // clone: to() returns the same tensor when nothing changes, and steps update in place
    Tensor p = f.at("init.p" + std::to_string(j)).to(dtype).to(device).clone();
    p.set_requires_grad(true);
    params.push_back(p);
  }
  return params;
}

std::vector<optim::ParamGroup> two_groups(const std::vector<Tensor>& params) {
  optim::ParamGroup a, b;
  a.params = {params[0], params[1]};
  a.lr = 0.1;
  a.weight_decay = 0.01;
  b.params = {params[2]};
  b.lr = 0.03;
  b.weight_decay = 0.1;
  return {a, b};
}

// grad = sin(1.3 step + 0.7 k + 0.5 j) + 0.1 p, element k of parameter j (pseudo_grad in the script).
void set_pseudo_grads(const std::vector<Tensor>& params, int step) {
  for (size_t j = 0; j < params.size(); ++j) {
    const Tensor& p = params[j];
    std::vector<double> values = p.to(Device::cpu()).to(DType::f64).to_vector();
    for (size_t k = 0; k < values.size(); ++k)
      values[k] = std::sin(1.3 * step + 0.7 * static_cast<double>(k) + 0.5 * static_cast<double>(j)) + 0.1 * values[k];
    p.set_grad(from_vector(values, p.shape(), {DType::f64}).to(p.dtype()).to(p.device()));
  }
}

std::vector<std::string> param_names() { return {"p0", "p1", "p2"}; }

// Runs steps [first, last) of a case; returns each parameter's values after each step.
std::vector<std::vector<double>> run_steps(optim::Optimizer& optimizer, const std::vector<Tensor>& params, int first,
                                           int last) {
  std::vector<std::vector<double>> trajectory(params.size());
  for (int step = first; step < last; ++step) {
    set_pseudo_grads(params, step);
    optimizer.step();
    for (size_t j = 0; j < params.size(); ++j) {
      const std::vector<double> v = params[j].to(Device::cpu()).to(DType::f64).to_vector();
      trajectory[j].insert(trajectory[j].end(), v.begin(), v.end());
    }
  }
  return trajectory;
}

}  // namespace

TEST_CASE("optim: every optimizer matches torch.optim for 10 steps in float64, two param groups") {
  const SafeTensors f = load_fixture();
  for (const OptimCase& c : cases()) {
    CAPTURE(c.fixture_name);
    const std::vector<Tensor> params = make_params(f, DType::f64, Device::cpu());
    auto optimizer = optim::make_optimizer(c.optimizer, two_groups(params), c.options);
    CHECK(optimizer->name() == c.optimizer);
    const auto trajectory = run_steps(*optimizer, params, 0, 10);
    for (size_t j = 0; j < params.size(); ++j) {
      CAPTURE(j);
      CHECK(test::max_abs_diff(trajectory[j], f.at(c.fixture_name + ".p" + std::to_string(j)).to_vector()) < 1e-10);
    }
  }
}

TEST_CASE("optim: state_dict after 5 steps, loaded into a new optimizer, resumes exactly") {
  const SafeTensors f = load_fixture();
  for (const OptimCase& c : cases()) {
    CAPTURE(c.fixture_name);
    const std::vector<Tensor> straight = make_params(f, DType::f64, Device::cpu());
    auto reference = optim::make_optimizer(c.optimizer, two_groups(straight), c.options);
    const auto want = run_steps(*reference, straight, 0, 10);

    const std::vector<Tensor> resumed = make_params(f, DType::f64, Device::cpu());
    auto first = optim::make_optimizer(c.optimizer, two_groups(resumed), c.options);
    run_steps(*first, resumed, 0, 5);
    const std::map<std::string, Tensor> state = first->state_dict(param_names());
    CHECK(state.at("step").item() == 5);
    if (c.optimizer != "sgd") CHECK(state.count("p2.exp_avg_sq") == 1);
    first.reset();  // the new optimizer must not rely on anything the old one held
    auto second = optim::make_optimizer(c.optimizer, two_groups(resumed), c.options);
    second->load_state_dict(state, param_names());
    CHECK(second->step_count() == 5);
    const auto got = run_steps(*second, resumed, 5, 10);
    for (size_t j = 0; j < resumed.size(); ++j) {
      CAPTURE(j);
      const std::vector<double> tail(want[j].end() - static_cast<std::ptrdiff_t>(got[j].size()), want[j].end());
      CHECK(test::max_abs_diff(got[j], tail) == 0.0);
    }
  }
}

TEST_CASE("optim: load_state_dict names the missing or mismatched key") {
  const SafeTensors f = load_fixture();
  const std::vector<Tensor> params = make_params(f, DType::f64, Device::cpu());
  optim::OptimizerOptions options;
  auto adam = optim::make_optimizer("adam", two_groups(params), options);
  run_steps(*adam, params, 0, 1);
  std::map<std::string, Tensor> state = adam->state_dict(param_names());
  std::map<std::string, Tensor> no_step = state;
  no_step.erase("step");
  test::expect_error_containing([&] { adam->load_state_dict(no_step, param_names()); }, {"'step'", "missing"});
  state["p1.exp_avg"] = zeros({7}, {DType::f64});
  test::expect_error_containing([&] { adam->load_state_dict(state, param_names()); }, {"p1.exp_avg", "(7,)"});
  test::expect_error_containing([&] { adam->state_dict({"p0"}); }, {"1 parameter names for 3 parameters"});
}

TEST_CASE("optim: make_optimizer lists the valid names for an unknown one") {
  optim::OptimizerOptions one_group;
  one_group.lr = 0.5;
  one_group.weight_decay = 0.25;
  auto sgd = optim::make_optimizer("sgd", std::vector<Tensor>{zeros({2})}, one_group);
  REQUIRE(sgd->groups().size() == 1);
  CHECK(sgd->groups()[0].lr == 0.5);
  CHECK(sgd->groups()[0].weight_decay == 0.25);
  test::expect_error_containing([] { optim::make_optimizer("adamax", std::vector<optim::ParamGroup>{}, {}); },
                                {"unknown optimizer 'adamax'", "adam, adamw, nadam, radam, sgd"});
  test::expect_error_containing(
      [] {
        optim::OptimizerOptions o;
        o.amsgrad = true;
        optim::make_optimizer("nadam", std::vector<optim::ParamGroup>{}, o);
      },
      {"nadam", "amsgrad"});
}

TEST_CASE("optim: param_groups_no_decay_on_norms_and_biases puts 1-D parameters in a group without decay") {
  nn::Sequential net;
  net.add(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1))
      .add(std::make_shared<nn::BatchNorm>(4))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(16, 2));
  const auto groups = optim::param_groups_no_decay_on_norms_and_biases(net, 0.05, 5e-4);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "decay");
  CHECK(groups[0].weight_decay == 5e-4);
  CHECK(groups[0].params.size() == 2);  // conv weight, linear weight
  CHECK(groups[1].name == "no_decay");
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[1].params.size() == 4);  // conv bias, BN weight and bias, linear bias
  CHECK(groups[1].lr == 0.05);
  for (const Tensor& p : groups[1].params) CHECK(p.dim() == 1);
}

TEST_CASE("optim: fused CUDA updates match the CPU reference in float32" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("fused optimizer updates on CUDA")) return;
  const SafeTensors f = load_fixture();
  for (const OptimCase& c : cases()) {
    CAPTURE(c.fixture_name);
    const std::vector<Tensor> on_cpu = make_params(f, DType::f32, Device::cpu());
    const std::vector<Tensor> on_gpu = make_params(f, DType::f32, Device::cuda(0));
    auto cpu_optimizer = optim::make_optimizer(c.optimizer, two_groups(on_cpu), c.options);
    auto gpu_optimizer = optim::make_optimizer(c.optimizer, two_groups(on_gpu), c.options);
    const auto want = run_steps(*cpu_optimizer, on_cpu, 0, 10);
    const auto got = run_steps(*gpu_optimizer, on_gpu, 0, 10);
    for (size_t j = 0; j < on_cpu.size(); ++j) {
      CAPTURE(j);
      CHECK(test::relative_l2(got[j], want[j]) < 1e-5);
    }
  }
}
