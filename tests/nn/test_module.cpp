#include <doctest/doctest.h>

#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#include "weights/safetensors.h"

using namespace kiln;

namespace {
std::shared_ptr<nn::Sequential> tiny() {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1))
      .add(std::make_shared<nn::BatchNorm>(8))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::AdaptiveAvgPool2d>(1, 1))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(8, 4));
  return net;
}
}  // namespace

TEST_CASE("nn: named parameters and buffers follow torch.nn.Sequential names") {
  auto net = tiny();
  std::vector<std::string> names;
  for (auto& [name, t] : net->named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"});
  CHECK(net->named_buffers().size() == 2);
  CHECK(net->parameter_count() == 8 * 3 * 9 + 8 + 8 + 8 + 8 * 4 + 4);
}

TEST_CASE("nn: freeze by prefix stops gradients and work for that part") {
  auto net = tiny();
  CHECK(net->freeze("0.") == 2);
  CHECK(net->parameter_count(true) == net->parameter_count() - (8 * 3 * 9 + 8));
  Rng rng(1);
  Tensor x = uniform({2, 3, 5, 5}, -1, 1, rng);
  sum(net->forward(x)).backward();
  CHECK(!net->child("0")->named_parameters()[0].second.grad().defined());
  CHECK(net->child("5")->named_parameters()[0].second.grad().defined());
  test::expect_error_containing([&] { net->freeze("layer9"); }, {"freeze", "layer9"});
  CHECK(net->unfreeze("") == 6);
}

TEST_CASE("nn: state_dict round trip through safetensors, and clear load errors") {
  auto a = tiny();
  auto b = tiny();  // different random init
  const std::string path = "/tmp/kiln_test_state.safetensors";
  save_safetensors(path, a->state_dict(), {{"model", "tiny"}});
  SafeTensors loaded = load_safetensors(path);
  CHECK(loaded.metadata["model"] == "tiny");
  b->load_state_dict(loaded.tensors);
  for (auto& [name, t] : a->state_dict()) CHECK(b->state_dict()[name].to_vector() == t.to_vector());
  auto wrong = loaded.tensors;
  wrong["5.weight"] = zeros({3, 8});
  test::expect_error_containing([&] { b->load_state_dict(wrong); }, {"5.weight", "(3, 8)", "(4, 8)"});
  wrong.erase("5.weight");
  test::expect_error_containing([&] { b->load_state_dict(wrong); }, {"no value for 5.weight"});
  test::expect_error_containing([&] { load_safetensors("/tmp/does-not-exist.safetensors"); },
                                {"/tmp/does-not-exist.safetensors"});
}

TEST_CASE("nn: eval mode uses running statistics, train mode updates them") {
  auto net = tiny();
  Rng rng(2);
  Tensor x = uniform({4, 3, 5, 5}, -1, 1, rng);
  auto bn = std::static_pointer_cast<nn::BatchNorm>(net->child("1"));
  const std::vector<double> before = bn->running_mean.to_vector();
  net->eval();
  net->forward(x);
  CHECK(bn->running_mean.to_vector() == before);
  net->train();
  net->forward(x);
  CHECK(bn->running_mean.to_vector() != before);
}

TEST_CASE("nn: a printable module tree") {
  auto net = tiny();
  const std::string text = net->to_string();
  CHECK(text.find("(0): Conv2d(3, 8, kernel=(3, 3)") != std::string::npos);
  CHECK(text.find("(5): Linear(in=8, out=4)") != std::string::npos);
}

#include "models/cnn5.h"

TEST_CASE("cnn5: the configuration survives a JSON round trip, and bad JSON names the key") {
  models::Cnn5Config c;
  c.filters = {8, 16, 16, 32, 32};
  c.kernel_sizes = {5, 3, 3, 3, 3};
  c.activation = Activation::mish;
  c.batch_norm = false;
  c.dropout_where = "both";
  const models::Cnn5Config back = models::Cnn5Config::from_json(c.to_json());
  CHECK(back.to_string() == c.to_string());
  CHECK(back.kernel_sizes == c.kernel_sizes);
  nlohmann::json broken = c.to_json();
  broken.erase("dense_units");
  test::expect_error_containing([&] { models::Cnn5Config::from_json(broken); }, {"dense_units"});
}

TEST_CASE("cnn5: parameter count matches the built network") {
  models::Cnn5Config c;
  c.input_size = 64;
  for (bool bn : {true, false}) {
    c.batch_norm = bn;
    CHECK(models::make_cnn5(c)->parameter_count() == models::cnn5_parameter_count(c));
  }
}
