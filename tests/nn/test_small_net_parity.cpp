// A small CNN trained for five SGD steps gives PyTorch's numbers: the logits and
// every parameter gradient of the first step, the loss of every step, and the
// parameters and batch-norm running statistics at the end.
// Fixture: tests/fixtures/make_fixtures.py (PyTorch, float64).
#include <doctest/doctest.h>

#include "engine/nn/layers.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "test_util.h"
#include "weights/safetensors.h"

using namespace kiln;

namespace {

SafeTensors load_fixture() { return test::load_fixture("small_net.safetensors"); }

std::shared_ptr<nn::Sequential> small_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1))
      .add(std::make_shared<nn::BatchNorm>(4))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}))
      .add(std::make_shared<nn::Conv2d>(4, 8, 3, 1, 1))
      .add(std::make_shared<nn::BatchNorm>(8))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(8 * 2 * 2, 5));
  return net;
}

// Trains on `device` in `dtype` (inputs and parameters) and checks against the fixture.
void train_and_compare(const Device& device, DType dtype, Layout layout, double tolerance) {
  const SafeTensors f = load_fixture();
  auto net = small_net();
  std::map<std::string, Tensor> init;
  for (auto& [name, t] : f.tensors)
    if (name.rfind("init.", 0) == 0) init[name.substr(5)] = t;
  net->load_state_dict(init, /*strict=*/false);  // running stats keep their defaults (0 and 1), as in torch
  net->to(dtype);
  net->to(layout);
  net->to(device);
  const Tensor x = f.at("input").to(dtype).to(layout).to(device);
  const Tensor labels = f.at("labels").to(device);
  optim::SgdOptions options;
  options.lr = 0.1;
  options.momentum = 0.9;
  options.weight_decay = 1e-4;
  optim::SGD sgd(net->parameters(), options);
  const std::vector<double> want_losses = f.at("losses").to_vector();
  for (int step = 0; step < 5; ++step) {
    CAPTURE(step);
    sgd.zero_grad();
    Tensor logits = net->forward(x);
    Tensor loss = cross_entropy(logits, labels);
    loss.backward();
    if (step == 0) {
      CHECK(test::relative_l2(logits.to(Device::cpu()).to(DType::f64).to_vector(),
                              f.at("step0.logits").to_vector()) < tolerance);
      for (auto& [name, p] : net->named_parameters()) {
        CAPTURE(name);
        // A conv bias followed by batch norm has an exact gradient of 0 (batch norm
        // subtracts the channel mean), so both sides hold rounding noise there: the
        // error is measured against max(|reference|, 1e-3), the scale of a real gradient.
        const std::vector<double> got = p.grad().to(Device::cpu()).to(DType::f64).to_vector();
        const std::vector<double> want = f.at("step0.grad." + name).to_vector();
        double diff = 0, norm = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          diff += (got[i] - want[i]) * (got[i] - want[i]);
          norm += want[i] * want[i];
        }
        CHECK(std::sqrt(diff) / std::max(std::sqrt(norm), 1e-3) < tolerance);
      }
    }
    const double got = loss.to(Device::cpu()).to(DType::f64).item();
    CHECK(std::abs(got - want_losses[step]) < tolerance * std::max(1.0, want_losses[step]));
    sgd.step();
  }
  for (auto& [name, t] : net->state_dict()) {
    CAPTURE(name);
    CHECK(test::relative_l2(t.to(Device::cpu()).to(DType::f64).to_vector(), f.at("final." + name).to_vector()) <
          tolerance);
  }
}

}  // namespace

TEST_CASE("small net: 5 SGD steps match PyTorch in float64 on the CPU") {
  train_and_compare(Device::cpu(), DType::f64, Layout::nchw, 1e-9);
}

TEST_CASE("small net: 5 SGD steps match PyTorch in float32 on the CPU, channels-last") {
  train_and_compare(Device::cpu(), DType::f32, Layout::nhwc, 2e-4);
}

TEST_CASE("small net: 5 SGD steps match PyTorch in float32 on CUDA" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("small-net training parity on CUDA")) return;
  train_and_compare(Device::cuda(0), DType::f32, Layout::nhwc, 2e-4);
}
