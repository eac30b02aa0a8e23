// The models run batch norm + relu/relu6 and ResNet's add + relu as fused ops
// (nn::batch_norm_then_activation, add_then_activation, and nn::Sequential's
// BatchNorm -> activation pairs). This checks that the fusion changes nothing a
// user can see: the same outputs, parameter and input gradients and running
// statistics as the unfused module calls, in train and eval mode, and the same
// state_dict keys. The unfused path is forced the way kiln visualize forces it: a
// (no-op) forward hook on every activation module.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "models/blocks.h"
#include "models/cnn5.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"
#include "test_util.h"

using namespace kiln;

namespace {

struct Outcome {
  std::vector<double> output, grad_input;
  std::map<std::string, std::vector<double>> grads, buffers;
};

// One forward and backward of sum(model(x) * w) in float64, x of shape (2, C, size, size).
Outcome run(nn::Module& model, int64_t channels, int64_t size, bool training, bool unfused) {
  std::vector<nn::Module::HookHandle> hooks;
  if (unfused)
    models::for_each_module(model, [&](const std::string&, nn::Module& module) {
      if (dynamic_cast<nn::ActivationLayer*>(&module))
        hooks.push_back(
            module.register_forward_hook([](nn::Module&, const Tensor&, const Tensor&) { return Tensor(); }));
    });
  model.train(training);
  Rng rng(17);
  Tensor x = uniform({2, channels, size, size}, -2, 2, rng, {DType::f64});
  x.set_requires_grad(true);
  const Tensor out = model.forward(x);
  const Tensor w = uniform(out.shape(), -1, 1, rng, {DType::f64});
  sum(mul(out, w)).backward();
  Outcome result{out.to_vector(), x.grad().to_vector(), {}, {}};
  for (const auto& [name, p] : model.named_parameters()) result.grads[name] = p.grad().to_vector();
  for (const auto& [name, b] : model.named_buffers()) result.buffers[name] = b.to_vector();
  return result;
}

double scale_of(const std::vector<double>& v) {
  double m = 1;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

void check_fusion_changes_nothing(const std::function<nn::ModulePtr()>& make, int64_t channels = 3,
                                  int64_t size = 32) {
  for (bool training : {true, false}) {
    CAPTURE(training);
    // Two copies of one network: the fused run must not see the unfused run's
    // running-statistics update.
    nn::ModulePtr fused_model = make(), unfused_model = make();
    fused_model->to(DType::f64);
    unfused_model->to(DType::f64);
    unfused_model->load_state_dict(fused_model->state_dict());
    const Outcome want = run(*unfused_model, channels, size, training, true);
    const Outcome got = run(*fused_model, channels, size, training, false);
    CHECK(test::max_abs_diff(got.output, want.output) <= 1e-12 * scale_of(want.output));
    CHECK(test::max_abs_diff(got.grad_input, want.grad_input) <= 1e-12 * scale_of(want.grad_input));
    REQUIRE(got.grads.size() == want.grads.size());
    for (const auto& [name, grad] : want.grads) {
      CAPTURE(name);
      CHECK(test::max_abs_diff(got.grads.at(name), grad) <= 1e-12 * scale_of(grad));
    }
    REQUIRE(got.buffers.size() == want.buffers.size());
    for (const auto& [name, buffer] : want.buffers) {
      CAPTURE(name);
      CHECK(test::max_abs_diff(got.buffers.at(name), buffer) <= 1e-12 * scale_of(buffer));
    }
  }
}

}  // namespace

TEST_CASE("fused models: resnet (stem, BasicBlock, Bottleneck) gives the unfused outputs and gradients") {
  // The whole network (stem and BasicBlocks), at 16 px so that it stays quick.
  check_fusion_changes_nothing([] { return models::make_resnet(models::BlockKind::basic, {1, 1, 1, 1}, 5); }, 3, 16);
  // Blocks alone, narrow: with and without the downsample projection.
  check_fusion_changes_nothing([] { return std::make_shared<models::BasicBlock>(8, 8, 1); }, 8, 6);
  check_fusion_changes_nothing([] { return std::make_shared<models::Bottleneck>(8, 4, 2); }, 8, 6);
  check_fusion_changes_nothing([] { return std::make_shared<models::Bottleneck>(16, 4, 1); }, 16, 6);
}

TEST_CASE("fused models: mobilenet_v2 (ConvBNAct, relu6) gives the unfused outputs and gradients") {
  check_fusion_changes_nothing([] { return models::make_mobilenet_v2(5, 0.35, 0.0); }, 3, 32);
}

TEST_CASE("fused models: cnn5 with batch norm gives the unfused outputs and gradients") {
  for (Activation activation : {Activation::relu, Activation::gelu}) {  // gelu: not fused, the fallback
    CAPTURE(activation_name(activation));
    check_fusion_changes_nothing([activation] {
      models::Cnn5Config config;
      config.input_size = 32;
      config.filters = {4, 8, 8, 16, 16};
      config.dense_units = 8;
      config.num_classes = 5;
      config.dropout = 0;
      config.activation = activation;
      return models::make_cnn5(config);
    });
  }
}

TEST_CASE("fused models: the module tree and state_dict keys are the unfused ones") {
  auto net = models::make_resnet(models::BlockKind::basic, {1, 1, 1, 1}, 5);
  const auto state = net->state_dict();
  for (const char* key : {"bn1.running_var", "layer1.0.bn1.weight", "layer1.0.bn2.running_mean", "fc.bias"}) {
    CAPTURE(key);
    CHECK(state.count(key) == 1);
  }
  CHECK(net->child("layer1")->child("0")->child("relu")->type_name() == "relu");
  auto mobilenet = models::make_mobilenet_v2(5, 0.35, 0.0);
  CHECK(models::find_module(*mobilenet, "features.0.1")->type_name() == "BatchNorm");
  CHECK(models::find_module(*mobilenet, "features.0.2")->type_name() == "relu6");
}
