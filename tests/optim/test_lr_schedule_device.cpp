// The lr schedule on the device (engine/optim/lr_schedule_math.h): the host
// schedule against torch over 12,000 steps (fixture: tests/fixtures/lr_schedule_fixtures.py),
// the device's values against the host's bit for bit in f32 for every kind over the
// same 12,000 steps, and the fused SGD/Adam steps that read the schedule's step
// from device memory: equal to the host-scheduled steps, counting skipped steps,
// and replayable as a captured CUDA graph (no launch argument changes per step).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#if KILN_WITH_CUDA
#include <cuda_runtime.h>

#include "engine/cuda/context.h"
#endif

using namespace kiln;

namespace {

constexpr int64_t kSteps = 12000;  // the fixture's run length (lr_schedule_fixtures.py)
constexpr double kBaseLr = 0.1;    // the torch optimizer's lr there

// fixture case -> the kiln spec of the same schedule (lr_schedule_fixtures.py, CASES)
const std::vector<std::pair<std::string, std::string>>& torch_cases() {
  static const std::vector<std::pair<std::string, std::string>> cases = {
      {"step", "step:step_size=1500,gamma=0.7"},
      {"multistep", "multistep:milestones=2000,5000,9000,gamma=0.3"},
      {"exponential", "exponential:gamma=0.9997"},
      {"cosine", "cosine:warmup=500,min_factor=0.01"},
      {"cyclic_triangular", "cyclic:base_lr=1e-3,max_lr=0.2,step_size_up=700,step_size_down=500"},
      {"cyclic_triangular2", "cyclic:mode=triangular2,base_lr=1e-3,max_lr=0.2,step_size_up=800"},
      {"cyclic_exp_range", "cyclic:mode=exp_range,base_lr=1e-3,max_lr=0.2,step_size_up=600,gamma=0.9998"},
      {"onecycle", "onecycle:max_lr=0.4"},
      {"onecycle_linear_three_phase", "onecycle:max_lr=0.3,pct_start=0.25,anneal=linear,three_phase=1"},
  };
  return cases;
}

std::unique_ptr<optim::LrSchedule> make(const std::string& spec) {
  optim::LrScheduleContext context;
  context.base_lr = kBaseLr;
  context.total_steps = kSteps;
  return optim::make_lr_schedule(spec, context);
}

// The f32 lr a fused kernel uses at `step` when the host schedules it:
// Optimizer::scale_lr's base * factor, then the kernels' round to f32.
float host_lr_f32(const optim::LrSchedule& schedule, double base_lr, int64_t step) {
  return static_cast<float>(optim::lr_math::mul(base_lr, schedule.lr_factor(step)));
}

}  // namespace

TEST_CASE("lr schedules: the host schedule matches torch over 12000 steps, every kind") {
  const SafeTensors f = test::load_fixture("lr_schedules_long.safetensors");
  const int64_t stride = std::stoll(f.metadata.at("stride"));
  REQUIRE(std::stoll(f.metadata.at("steps")) == kSteps);
  for (const auto& [name, spec] : torch_cases()) {
    CAPTURE(spec);
    const auto schedule = make(spec);
    const std::vector<double> want = f.at("lr." + name).to_vector();
    REQUIRE(static_cast<int64_t>(want.size()) == (kSteps + stride - 1) / stride);
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double got = kBaseLr * schedule->lr_factor(static_cast<int64_t>(i) * stride);
      worst = std::max(worst, std::abs(got - want[i]) / std::max(std::abs(want[i]), 1e-30));
    }
    // torch's step/multistep/exponential multiply step by step: 12000 roundings
    CHECK(worst < 1e-10);
  }
}

TEST_CASE("lr schedules: cos(pi p) of lr_schedule_math.h is within 2 ulps of libm's from p = 0 to 1") {
  double worst = 0;
  for (int i = 0; i <= 100000; ++i) {
    const double p = i / 100000.0;
    worst = std::max(worst, std::abs(optim::lr_math::cos_pi(p) - std::cos(M_PI * p)));
  }
  CHECK(worst <= 2 * 2.220446049250313e-16);  // 2 ulps of 1
  CHECK(optim::lr_math::cos_pi(0.0) == 1.0);
  CHECK(optim::lr_math::cos_pi(1.0) == -1.0);
  CHECK(optim::lr_math::power(0.5, 10) == std::ldexp(1.0, -10));
}

TEST_CASE("lr schedules: cos(pi p) outside 0..1 folds back by symmetry and period, finite however far") {
  // onecycle's pct leaves [0, 1] when torch-legal settings give a phase of negative
  // length; the Taylor polynomials alone were far off there (cos_pi(-3) was not -1).
  double worst = 0;
  for (int i = -500000; i <= 500000; ++i) {
    const double p = i / 100000.0;  // [-5, 5]
    worst = std::max(worst, std::abs(optim::lr_math::cos_pi(p) - std::cos(M_PI * p)));
  }
  CHECK(worst <= 1e-14);  // libm's side rounds pi * p, an error growing with |p|
  CHECK(optim::lr_math::cos_pi(-3.0) == -1.0);
  CHECK(optim::lr_math::cos_pi(4.0) == 1.0);
  for (double p : {1e16, -1e16, 3e19, 1e300}) {
    const double c = optim::lr_math::cos_pi(p);
    CHECK((c >= -1.0 && c <= 1.0));
  }
}

TEST_CASE("lr schedules: the device schedule equals the host's bit for bit in f32, 12000 steps of every kind" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("device lr schedule")) return;
  std::vector<std::string> specs = {"constant", "cosine", "cyclic:max_lr=0.5"};  // defaults too
  for (const auto& entry : torch_cases()) specs.push_back(entry.second);
  for (const std::string& spec : specs) {
    CAPTURE(spec);
    const auto schedule = make(spec);
    for (double base_lr : {kBaseLr, 0.0371}) {  // a second group's lr: the factor is shared
      CAPTURE(base_lr);
      const Tensor values = empty({kSteps}, {DType::f32, Device::cuda(0)});
      optim::cuda::lr_schedule_values(schedule->params(), base_lr, 0, values);
      const Tensor on_host = values.to(Device::cpu());
      const float* device_lr = on_host.data<float>();
      int64_t differing = 0, first_differing = -1;
      for (int64_t step = 0; step < kSteps; ++step) {
        const float want = host_lr_f32(*schedule, base_lr, step);
        if (std::memcmp(&want, &device_lr[step], sizeof(float)) != 0) {
          if (first_differing < 0) first_differing = step;
          ++differing;
        }
      }
      CAPTURE(first_differing);
      CHECK(differing == 0);
    }
  }
}

namespace {

// Parameters of a few sizes (one past a multi-tensor chunk) with fixed gradients.
std::vector<Tensor> make_params(uint64_t seed) {
  std::vector<Tensor> params;
  Rng rng(seed);
  for (int64_t n : {int64_t{7}, int64_t{65537}, int64_t{300}}) {
    Tensor p = uniform({n}, -1, 1, rng).to(Device::cuda(0));
    p.set_requires_grad(true);
    p.set_grad(uniform({n}, -1, 1, rng).to(Device::cuda(0)));
    params.push_back(p);
  }
  return params;
}

std::vector<optim::ParamGroup> two_groups(const std::vector<Tensor>& params) {
  optim::ParamGroup a, b;
  a.params = {params[0], params[1]};
  a.lr = 0.1;
  a.weight_decay = 1e-3;
  b.params = {params[2]};
  b.lr = 0.037;
  return {a, b};
}

std::vector<float> values_of(const std::vector<Tensor>& params) {
  std::vector<float> all;
  for (const Tensor& p : params) {
    const Tensor h = p.detach().to(Device::cpu());
    all.insert(all.end(), h.data<float>(), h.data<float>() + h.numel());
  }
  return all;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("lr schedules: the fused SGD and Adam steps read the schedule's step from device memory" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("device-scheduled optimizer steps")) return;
  // A short cycle, so 14 steps see the lr rise, fall and start again.
  const auto schedule = make("cyclic:mode=triangular2,base_lr=0.01,max_lr=0.3,step_size_up=3,step_size_down=2");
  for (const std::string name : {"sgd", "adam"}) {
    CAPTURE(name);
    optim::OptimizerOptions options;
    options.momentum = 0.9;
    // (a) the device schedules itself; the host never calls scale_lr
    const auto device_params = make_params(5);
    auto on_device = optim::make_optimizer(name, two_groups(device_params), options);
    on_device->set_lr_schedule(schedule->params(), 0);
    // (b) the host scales the lr before each step, as the trainer did before
    const auto host_params = make_params(5);
    auto on_host = optim::make_optimizer(name, two_groups(host_params), options);
    // (c) the per-tensor path with the schedule set: the host computes the lr
    const auto single_params = make_params(5);
    auto single = optim::make_optimizer(name, two_groups(single_params), options);
    single->set_multi_tensor(false);
    single->set_lr_schedule(schedule->params(), 0);
    for (int64_t step = 0; step < 14; ++step) {
      if (step == 9) {  // the trainer leaves step 9 out (--on-nan skip): no step(), the schedule moves on
        on_device->skip_step();
        single->skip_step();
        continue;
      }
      // step 6 is skipped (found_inf): it changes nothing but still advances the schedule
      const Tensor found_inf = scalar(step == 6 ? 1.0f : 0.0f, {DType::f32}).to(Device::cuda(0));
      on_device->step(found_inf);
      on_host->scale_lr(schedule->lr_factor(step));
      on_host->step(found_inf);
      single->step(found_inf);
    }
    CHECK(on_device->lr_schedule_step() == 14);
    CHECK(on_device->step_count() == 12);
    CHECK(same_bits(values_of(device_params), values_of(host_params)));
    // The per-tensor Adam computes its bias corrections with the host's pow(); SGD
    // has none, so there the two paths are the same bits too.
    if (name == "sgd") CHECK(same_bits(values_of(device_params), values_of(single_params)));
    const std::vector<float> a = values_of(device_params), c = values_of(single_params);
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(a[i] - c[i])));
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("lr schedules: a device-scheduled SGD step captured as a CUDA graph replays like eager steps" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("CUDA graph of an optimizer step")) return;
#if KILN_WITH_CUDA  // (skip_without_gpu returned above otherwise; this keeps the CPU build linking)
  const auto schedule = make("onecycle:max_lr=0.3,total=12");
  optim::OptimizerOptions options;
  options.momentum = 0.9;
  const auto eager_params = make_params(9);
  auto eager = optim::make_optimizer("sgd", two_groups(eager_params), options);
  eager->set_lr_schedule(schedule->params(), 0);
  const auto graph_params = make_params(9);
  auto captured = optim::make_optimizer("sgd", two_groups(graph_params), options);
  captured->set_lr_schedule(schedule->params(), 0);
  for (int step = 0; step < 12; ++step) eager->step();
  // One eager step first: it creates the momentum buffers, step counts and the
  // schedule's device counter (no allocation may happen during capture).
  captured->step();
  cudaStream_t stream = kiln::cuda::context_for(graph_params.front()).stream();
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
  captured->step();  // recorded, not run
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  // The same launches with the same arguments, eleven times: only the counter in
  // device memory tells the steps apart, and the lr follows the schedule.
  for (int replay = 0; replay < 11; ++replay) REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  CHECK(same_bits(values_of(graph_params), values_of(eager_params)));
  // ...whereas replaying with the lr fixed at the first step's would differ.
  const auto fixed_params = make_params(9);
  auto fixed = optim::make_optimizer("sgd", two_groups(fixed_params), options);
  fixed->scale_lr(schedule->lr_factor(0));
  for (int step = 0; step < 12; ++step) fixed->step();
  CHECK(!same_bits(values_of(fixed_params), values_of(eager_params)));
#endif
}
