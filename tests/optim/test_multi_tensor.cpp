// The multi-tensor optimizer step (engine/optim/multi_tensor.h, kernels/multi_tensor.cuh):
// the launch plan covers every element once within its limits (CPU), counts the
// launches of the real models (for docs/optim.md), and on a GPU the multi-tensor
// step equals the per-tensor step and the CPU reference, for f32 and bf16
// parameters of mixed sizes (chunk edges, empty tensors, more tensors than one
// launch holds), including a step that a device-side found_inf flag skips.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops/elementwise.h"
#include "engine/optim/adam.h"
#include "engine/optim/loss_scaler.h"
#include "engine/optim/multi_tensor.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "engine/train/grad_clip.h"
#include "models/registry.h"
#include "test_util.h"

using namespace kiln;

namespace {

// Every element of every tensor, exactly once, in launches within the limits.
void check_plan_covers(const std::vector<int64_t>& sizes, int max_tensors, int max_blocks, int64_t chunk) {
  const auto plan = optim::plan_multi_tensor_launches(sizes, max_tensors, max_blocks, chunk);
  std::vector<std::vector<int>> chunk_seen(sizes.size());
  for (size_t t = 0; t < sizes.size(); ++t) chunk_seen[t].assign(static_cast<size_t>((sizes[t] + chunk - 1) / chunk), 0);
  for (const auto& launch : plan) {
    CHECK(static_cast<int>(launch.tensors.size()) <= max_tensors);
    CHECK(static_cast<int>(launch.blocks.size()) <= max_blocks);
    CHECK(!launch.blocks.empty());
    for (const auto& block : launch.blocks) {
      REQUIRE(block.slot < static_cast<int>(launch.tensors.size()));
      const int t = launch.tensors[block.slot];
      REQUIRE(block.chunk < static_cast<int>(chunk_seen[t].size()));
      ++chunk_seen[t][block.chunk];
    }
  }
  for (size_t t = 0; t < sizes.size(); ++t)
    for (int seen : chunk_seen[t]) CHECK(seen == 1);
}

}  // namespace

TEST_CASE("multi-tensor plan: every chunk once, within the tensor and block limits, empty tensors skipped") {
  // Sizes straddling chunk edges (chunk 10), empty tensors first, in the middle and last.
  const std::vector<int64_t> sizes = {0, 9, 10, 11, 0, 1, 35, 20, 0, 100, 3, 0};
  for (int max_tensors : {1, 2, 3, 110})
    for (int max_blocks : {1, 2, 4, 320}) {
      CAPTURE(max_tensors);
      CAPTURE(max_blocks);
      check_plan_covers(sizes, max_tensors, max_blocks, 10);
    }
  // With room for everything: one launch, one block per chunk (1+1+2+1+4+2+10+1).
  const auto one = optim::plan_multi_tensor_launches(sizes, 110, 320, 10);
  REQUIRE(one.size() == 1);
  CHECK(one[0].blocks.size() == 22);
  CHECK(one[0].tensors.size() == 8);  // the four empty tensors have no slot
  // A tensor cut by a full block table continues in the next launch, in a new slot 0.
  const auto cut = optim::plan_multi_tensor_launches({25}, 110, 2, 10);
  REQUIRE(cut.size() == 2);
  CHECK(cut[1].tensors == std::vector<int>{0});
  CHECK(cut[1].blocks[0].chunk == 2);
  CHECK(optim::plan_multi_tensor_launches({0, 0}, 4).empty());
  CHECK(optim::multi_tensor_max_tensors(1) == 110);
  CHECK(optim::multi_tensor_max_tensors(7) == 32);
  test::expect_error_containing([] { optim::multi_tensor_max_tensors(9); }, {"depth", "1..8"});
}

TEST_CASE("multi-tensor plan: launches per optimizer step of ResNet-18/50 and MobileNetV2 (docs/optim.md)") {
  for (const std::string arch : {"resnet18", "resnet50", "mobilenet_v2"}) {
    CAPTURE(arch);
    const auto model = models::make_model(arch, 1000);
    const auto groups = optim::param_groups_no_decay_on_norms_and_biases(*model, 0.1, 1e-4);
    int64_t parameters = 0, sgd_launches = 0, adam_launches = 0, step_count_launches = 0;
    std::string per_group;
    for (const auto& group : groups) {
      std::vector<int64_t> sizes, ones;
      for (const Tensor& p : group.params) sizes.push_back(p.numel());
      ones.assign(sizes.size(), 1);
      const int64_t sgd = static_cast<int64_t>(
          optim::plan_multi_tensor_launches(sizes, optim::multi_tensor_max_tensors(4)).size());
      const int64_t adam = static_cast<int64_t>(
          optim::plan_multi_tensor_launches(sizes, optim::multi_tensor_max_tensors(7)).size());
      const int64_t counts = static_cast<int64_t>(
          optim::plan_multi_tensor_launches(ones, optim::multi_tensor_max_tensors(2)).size());
      check_plan_covers(sizes, optim::multi_tensor_max_tensors(7), optim::kMultiTensorMaxBlocks,
                        optim::kMultiTensorChunk);
      per_group += " " + group.name + ": " + std::to_string(group.params.size()) + " params -> sgd " +
                   std::to_string(sgd) + ", adam " + std::to_string(adam) + ", counts " + std::to_string(counts) + ";";
      parameters += static_cast<int64_t>(group.params.size());
      sgd_launches += sgd;
      adam_launches += adam;
      step_count_launches += counts;
    }
    MESSAGE(arch << ": " << parameters << " parameters (per-tensor: " << parameters << " launches);" << per_group
                 << " multi-tensor total: sgd " << sgd_launches + step_count_launches << ", adam "
                 << adam_launches + step_count_launches << " launches");
    CHECK(sgd_launches + step_count_launches < parameters / 4);
    CHECK(adam_launches + step_count_launches < parameters / 3);
  }
}

// ---- CUDA: multi-tensor == per-tensor == CPU reference

namespace {

struct Case {
  std::string name, optimizer;
  optim::OptimizerOptions options;
};

std::vector<Case> gpu_cases() {
  std::vector<Case> all;
  auto add = [&](const std::string& name, const std::string& optimizer, auto set) {
    optim::OptimizerOptions o;
    set(o);
    all.push_back({name, optimizer, o});
  };
  add("sgd", "sgd", [](auto&) {});
  add("sgd_momentum", "sgd", [](auto& o) { o.momentum = 0.9, o.dampening = 0.2; });
  add("sgd_nesterov", "sgd", [](auto& o) { o.momentum = 0.9, o.nesterov = true; });
  add("adam", "adam", [](auto& o) { o.beta2 = 0.99; });
  add("adam_amsgrad", "adam", [](auto& o) { o.beta1 = 0.8, o.beta2 = 0.95, o.eps = 1e-6, o.amsgrad = true; });
  add("adamw", "adamw", [](auto&) {});
  add("adamw_amsgrad", "adamw", [](auto& o) { o.beta2 = 0.99, o.amsgrad = true; });
  add("nadam", "nadam", [](auto&) {});
  add("radam", "radam", [](auto& o) { o.beta2 = 0.9; });  // rho_t passes 5 within the run
  return all;
}

// 44 tensors: empty ones, chunk edges (65535, 65536, 65537), one of several
// chunks, and many small ones (more than the 32 an Adam launch holds).
std::vector<int64_t> mixed_sizes() {
  const int64_t chunk = optim::kMultiTensorChunk;
  std::vector<int64_t> sizes = {0, chunk - 1, chunk, 1, chunk + 1, 0, 3 * chunk + 5};
  for (int i = 0; i < 36; ++i) sizes.push_back(1 + (i * 37) % 300);
  sizes.push_back(0);
  return sizes;
}

double value_at(int step, int tensor, int64_t k) { return std::sin(0.37 * step + 0.11 * tensor + 0.013 * k); }

// f32 host values rounded to `dtype` (so that the CPU reference starts from the
// same numbers as a bf16 run), as f32.
Tensor rounded(const std::vector<double>& values, DType dtype) {
  const int64_t n = static_cast<int64_t>(values.size());
  return from_vector(values, {n}).to(dtype).to(DType::f32);
}

std::vector<Tensor> make_params(const std::vector<int64_t>& sizes, DType dtype, const Device& device) {
  std::vector<Tensor> params;
  for (size_t t = 0; t < sizes.size(); ++t) {
    std::vector<double> v(static_cast<size_t>(sizes[t]));
    for (int64_t k = 0; k < sizes[t]; ++k) v[static_cast<size_t>(k)] = 0.5 * value_at(100, static_cast<int>(t), k);
    Tensor p = rounded(v, dtype).to(device.is_cuda() ? dtype : DType::f32).to(device).clone();
    p.set_requires_grad(true);
    params.push_back(p);
  }
  return params;
}

void set_grads(const std::vector<Tensor>& params, int step, DType dtype) {
  for (size_t t = 0; t < params.size(); ++t) {
    std::vector<double> g(static_cast<size_t>(params[t].numel()));
    for (size_t k = 0; k < g.size(); ++k) g[k] = value_at(step, static_cast<int>(t), static_cast<int64_t>(k));
    params[t].set_grad(rounded(g, dtype).to(params[t].dtype()).to(params[t].device()));
  }
}

std::vector<optim::ParamGroup> two_groups(const std::vector<Tensor>& params) {
  optim::ParamGroup a, b;
  for (size_t i = 0; i < params.size(); ++i) (i % 3 == 2 ? b : a).params.push_back(params[i]);
  a.lr = 0.01;
  a.weight_decay = 0.05;
  b.lr = 0.003;
  b.weight_decay = 0;
  return {a, b};
}

// Six steps; the fourth with found_inf set (it must change nothing).
std::vector<double> run(optim::Optimizer& optimizer, const std::vector<Tensor>& params, DType grad_dtype) {
  for (int step = 0; step < 6; ++step) {
    set_grads(params, step, grad_dtype);
    const Tensor found_inf = scalar(step == 3 ? 1.0 : 0.0).to(params.front().device());
    optimizer.step(found_inf);
  }
  std::vector<double> all;
  for (const Tensor& p : params) {
    const std::vector<double> v = p.to(Device::cpu()).to(DType::f32).to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace

TEST_CASE("multi-tensor step: equals the per-tensor step and the CPU reference, f32 and bf16" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("multi-tensor optimizer step")) return;
  const std::vector<int64_t> sizes = mixed_sizes();
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (const Case& c : gpu_cases()) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(c.name);
      const auto cpu_params = make_params(sizes, dtype, Device::cpu());
      const auto multi_params = make_params(sizes, dtype, Device::cuda(0));
      const auto single_params = make_params(sizes, dtype, Device::cuda(0));
      auto cpu = optim::make_optimizer(c.optimizer, two_groups(cpu_params), c.options);
      auto multi = optim::make_optimizer(c.optimizer, two_groups(multi_params), c.options);
      auto single = optim::make_optimizer(c.optimizer, two_groups(single_params), c.options);
      single->set_multi_tensor(false);
      const auto want = run(*cpu, cpu_params, dtype);
      const auto got_multi = run(*multi, multi_params, dtype);
      const auto got_single = run(*single, single_params, dtype);
      // The same f32 math; only a host pow() against a device pow() may differ in
      // the last bit of a bias correction.
      CHECK(test::relative_l2(got_multi, got_single) < (dtype == DType::f32 ? 1e-6 : 4e-3));
      CHECK(test::relative_l2(got_multi, want) < (dtype == DType::f32 ? 1e-5 : 2e-2));
      // The skipped step is not counted, by the optimizer nor per parameter.
      CHECK(multi->step_count() == 5);
      CHECK(cpu->step_count() == 5);
      std::vector<std::string> names;
      for (size_t i = 0; i < sizes.size(); ++i) names.push_back("p" + std::to_string(i));
      // Group order: two_groups puts every third parameter in group b.
      std::vector<std::string> ordered;
      for (size_t i = 0; i < sizes.size(); ++i)
        if (i % 3 != 2) ordered.push_back(names[i]);
      for (size_t i = 0; i < sizes.size(); ++i)
        if (i % 3 == 2) ordered.push_back(names[i]);
      const auto cpu_state = cpu->state_dict(ordered);
      const auto multi_state = multi->state_dict(ordered);
      CHECK(multi_state.at("p1.step").device().is_cpu());
      for (const std::string key : {"p1.step", "p4.step", "step"}) {
        CAPTURE(key);
        CHECK(multi_state.at(key).item() == cpu_state.at(key).item());
      }
      if (c.optimizer == "nadam") CHECK(multi_state.at("p1.mu_product").item() == cpu_state.at("p1.mu_product").item());
    }
  }
}

TEST_CASE("multi-tensor loss scaling and clipping on CUDA match the CPU, with no step skipped by mistake" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("multi-tensor unscale and clip_grad_norm")) return;
  const std::vector<int64_t> sizes = mixed_sizes();
  std::vector<double> norms, scales;
  std::vector<int64_t> skipped;
  std::vector<std::vector<double>> finals;
  for (const Device& device : {Device::cpu(), Device::cuda(0)}) {
    const auto params = make_params(sizes, DType::f32, device);
    optim::OptimizerOptions o;
    o.momentum = 0.9;
    auto sgd = optim::make_optimizer("sgd", two_groups(params), o);
    optim::LossScalerOptions so;
    so.initial_scale = 1024;
    so.growth_interval = 2;
    optim::LossScaler scaler(so);
    double last_norm = 0;
    for (int step = 0; step < 5; ++step) {
      set_grads(params, step, DType::f32);
      // The gradients as a backward of loss * S would leave them.
      for (const Tensor& p : params) p.set_grad(mul_scalar(p.grad(), 1024.0));
      if (step == 1) params[6].set_grad(full_like(params[6].grad(), INFINITY));
      scaler.unscale(*sgd);
      last_norm = train::clip_grad_norm(params, 3.0).to(Device::cpu()).item();
      scaler.step(*sgd);
    }
    norms.push_back(last_norm);
    scales.push_back(scaler.current_scale());
    skipped.push_back(scaler.skipped_steps());
    std::vector<double> all;
    for (const Tensor& p : params) {
      const auto v = p.to(Device::cpu()).to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    finals.push_back(all);
  }
  CHECK(skipped[0] == 1);
  CHECK(skipped[1] == 1);
  CHECK(scales[1] == scales[0]);
  CHECK(norms[1] == doctest::Approx(norms[0]).epsilon(1e-5));
  CHECK(test::relative_l2(finals[1], finals[0]) < 1e-5);
}
