// nn::Module forward hooks: they fire however a parent calls its children, see the
// module's input and output, may replace the output, and end with their handle.
#include <doctest/doctest.h>

#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/tensor/factory.h"
#include "models/registry.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("nn: a forward hook sees a nested module's input and output and can replace the output") {
  auto inner = std::make_shared<nn::ActivationLayer>(Activation::relu);
  auto block = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{inner});
  nn::Sequential net;
  net.add(block).add(std::make_shared<nn::ActivationLayer>(Activation::tanh));
  const Tensor x = from_vector({-1.0, 2.0}, {2});

  Tensor seen_input, seen_output;
  int calls = 0;
  auto handle = inner->register_forward_hook([&](nn::Module& module, const Tensor& input, const Tensor& output) {
    CHECK(&module == inner.get());
    seen_input = input;
    seen_output = output;
    ++calls;
    return Tensor();  // keep the output
  });
  const Tensor y = net.forward(x);
  CHECK(calls == 1);
  CHECK(seen_input.to_vector() == std::vector<double>{-1.0, 2.0});
  CHECK(seen_output.to_vector() == std::vector<double>{0.0, 2.0});

  {  // A second hook replaces the output: the rest of the network sees the replacement.
    auto doubler = inner->register_forward_hook(
        [](nn::Module&, const Tensor&, const Tensor& output) { return mul(output, full_like(output, 2.0)); });
    CHECK(net.forward(x).to_vector()[1] == doctest::Approx(std::tanh(4.0)));
  }
  CHECK(net.forward(x).to_vector()[1] == doctest::Approx(std::tanh(2.0)));  // the doubler is gone
  CHECK(calls == 3);
  handle.reset();
  net.forward(x);
  CHECK(calls == 3);
}

TEST_CASE("nn: hooks fire inside ResNet blocks that call their children directly, once per call") {
  auto resnet = models::make_model("resnet18", 2);
  resnet->eval();
  int relu_calls = 0, conv_calls = 0;
  auto block = resnet->child("layer1")->child("0");
  auto relu_hook = block->child("relu")->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) {
    ++relu_calls;
    return Tensor();
  });
  auto conv_hook = block->child("conv2")->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& y) {
    ++conv_calls;
    CHECK(y.shape() == Shape{1, 64, 8, 8});
    return Tensor();
  });
  Rng rng(1);
  resnet->forward(uniform({1, 3, 32, 32}, -1, 1, rng));
  CHECK(relu_calls == 2);  // BasicBlock uses its relu twice
  CHECK(conv_calls == 1);
}

TEST_CASE("nn: a hook handle outliving its module, and moved handles, are safe") {
  nn::Module::HookHandle kept;
  {
    auto layer = std::make_shared<nn::ActivationLayer>(Activation::relu);
    auto first = layer->register_forward_hook([](nn::Module&, const Tensor&, const Tensor&) { return Tensor(); });
    kept = std::move(first);
    first.reset();  // moved-from: removes nothing
    int calls = 0;
    auto counting = layer->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) {
      ++calls;
      return Tensor();
    });
    layer->forward(from_vector({1.0}, {1}));
    CHECK(calls == 1);
  }
  kept.reset();  // the module is gone: nothing to remove, no crash
}
