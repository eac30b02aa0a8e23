// import_onnx on torch exports of two small networks, batch norm kept and folded,
// gives torch's logits; mismatches and unsupported ops are errors that name things.
// Fixtures: tests/fixtures/onnx_fixtures.py (the torch twins of the nets below).
#include <doctest/doctest.h>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#include "weights/onnx_import.h"
#include "weights/safetensors.h"

using namespace kiln;

namespace {

SafeTensors load_fixture() { return test::load_fixture("onnx_nets.safetensors"); }

std::string fixture(const std::string& name) { return test::fixture_dir() + "/" + name; }

// torch: Conv-BN-ReLU-MaxPool, Conv(stride 2)-BN-ReLU6, Flatten, Linear.
std::shared_ptr<nn::Sequential> plain_net(int64_t mid_channels = 8, int second_stride = 2) {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, 1, false))
      .add(std::make_shared<nn::BatchNorm>(4))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}))
      .add(std::make_shared<nn::Conv2d>(4, mid_channels, 3, second_stride, 1, 1, false))
      .add(std::make_shared<nn::BatchNorm>(mid_channels))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu6))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(mid_channels * 2 * 2, 5));
  return net;
}

// A ResNet basic block, registered as torchvision registers it: conv1, bn1, conv2,
// bn2, then downsample. (The torch twin computes the downsample first.)
class Block : public nn::Module {
 public:
  Block(int64_t in_channels, int64_t out_channels, int stride) {
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in_channels, out_channels, 3, stride, 1, 1, false));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(out_channels));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(out_channels, out_channels, 3, 1, 1, 1, false));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(out_channels));
    if (stride != 1 || in_channels != out_channels) {
      auto shortcut = std::make_shared<nn::Sequential>();
      shortcut->add(std::make_shared<nn::Conv2d>(in_channels, out_channels, 1, stride, 0, 1, false))
          .add(std::make_shared<nn::BatchNorm>(out_channels));
      downsample = register_module("downsample", shortcut);
    }
  }
  Tensor forward_impl(const Tensor& x) override {
    Tensor out = relu(bn1->forward(conv1->forward(x)));
    out = bn2->forward(conv2->forward(out));
    return relu(add(out, downsample ? downsample->forward(x) : x));
  }
  std::string type_name() const override { return "Block"; }
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm> bn1, bn2;
  std::shared_ptr<nn::Sequential> downsample;
};

std::shared_ptr<nn::Sequential> residual_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, 1, false))
      .add(std::make_shared<nn::BatchNorm>(4))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<Block>(4, 8, 2))
      .add(std::make_shared<Block>(8, 8, 1))
      .add(std::make_shared<nn::AdaptiveAvgPool2d>(1, 1))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(8, 5));
  return net;
}

double logits_error(nn::Module& net, const std::string& which) {
  const SafeTensors f = load_fixture();
  NoGradGuard no_grad;
  const Tensor logits = net.forward(f.at("input"));
  return test::relative_l2(logits.to(DType::f64).to_vector(), f.at(which + ".logits").to_vector());
}

}  // namespace

TEST_CASE("onnx import: plain net with batch norm kept gives torch's logits") {
  auto net = plain_net();
  const ImportReport r = import_onnx(fixture("onnx_plain_kept.onnx"), *net);
  CHECK(r.convs == 2);
  CHECK(r.batchnorms == 2);
  CHECK(r.folded_batchnorms == 0);
  CHECK(r.linears == 1);
  CHECK(r.tensors_loaded == 2 + 2 * 4 + 2);
  CHECK(r.ops_seen.at("BatchNormalization") == 2);
  CHECK(r.ops_seen.at("Clip") == 1);
  net->eval();
  CHECK(logits_error(*net, "plain") <= 1e-5);
}

TEST_CASE("onnx import: plain net with batch norm folded into the convs gives torch's logits") {
  auto net = plain_net();
  const ImportReport r = import_onnx(fixture("onnx_plain_folded.onnx"), *net);
  CHECK(r.ops_seen.count("BatchNormalization") == 0);
  CHECK(r.folded_batchnorms == 2);
  CHECK(r.frozen_batchnorms == std::vector<std::string>{"1", "5"});
  auto bn = std::static_pointer_cast<nn::BatchNorm>(net->child("1"));
  CHECK(bn->freeze_statistics);
  CHECK(bn->weight.to_vector() == std::vector<double>(4, 1.0));
  CHECK(bn->running_mean.to_vector() == std::vector<double>(4, 0.0));
  net->eval();
  CHECK(logits_error(*net, "plain") <= 1e-5);
  // Frozen statistics: train mode normalises with the same identity statistics.
  net->train();
  CHECK(logits_error(*net, "plain") <= 1e-5);
  CHECK(bn->running_mean.to_vector() == std::vector<double>(4, 0.0));
}

TEST_CASE("onnx import: residual net follows the dataflow, not the file order, kept and folded") {
  for (const char* variant : {"kept", "folded"}) {
    CAPTURE(variant);
    auto net = residual_net();
    const ImportReport r = import_onnx(fixture(std::string("onnx_residual_") + variant + ".onnx"), *net);
    CHECK(r.convs == 6);
    CHECK(r.batchnorms == 6);
    CHECK(r.folded_batchnorms == (std::string(variant) == "folded" ? 6 : 0));
    CHECK(r.ops_seen.at("Add") == 2);
    net->eval();
    CHECK(logits_error(*net, "residual") <= 1e-5);
  }
}

TEST_CASE("onnx import: a shape mismatch names the ONNX node, the module and both shapes") {
  auto wrong_channels = plain_net(6);
  test::expect_error_containing([&] { import_onnx(fixture("onnx_plain_kept.onnx"), *wrong_channels); },
                                {"onnx_plain_kept.onnx", "Conv node '/4/Conv'", "Conv2d '4'", "(8, 4, 3, 3) in ONNX",
                                 "(6, 4, 3, 3) in the model"});
  auto wrong_stride = plain_net(8, 1);
  test::expect_error_containing([&] { import_onnx(fixture("onnx_plain_folded.onnx"), *wrong_stride); },
                                {"Conv node '/4/Conv'", "stride=(2, 2)", "stride=(1, 1)"});
  auto other_net = plain_net();
  test::expect_error_containing([&] { import_onnx(fixture("onnx_residual_kept.onnx"), *other_net); },
                                {"onnx_residual_kept.onnx", "the graph and the model differ"});
}

TEST_CASE("onnx import: an unsupported op names the op and the node") {
  auto net = plain_net();
  test::expect_error_containing([&] { import_onnx(fixture("onnx_unsupported.onnx"), *net); },
                                {"onnx_unsupported.onnx", "op LRN", "LRN node 'lrn_node'", "not supported"});
}

TEST_CASE("onnx import: a weight named through Identity nodes is the initializer they copy") {
  // torch.onnx stores equal initializers once (VGG's zero biases at random init) and
  // names the duplicates with Identity nodes, as here: fc2's bias is
  // Identity(Identity(fc1's bias)), and the chain is written before its source.
  onnx::Model m;
  m.path = "identity.onnx";
  m.graph.initializers["fc1.weight"] = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  m.graph.initializers["fc1.bias"] = from_vector({0.5, -0.5}, {2});
  m.graph.initializers["fc2.weight"] = from_vector({1, -1, 2, 0}, {2, 2});
  const auto node = [](const std::string& op, std::vector<std::string> in, const std::string& out) {
    onnx::Node n;
    n.op_type = op;
    n.name = out + "_node";
    n.inputs = std::move(in);
    n.outputs = {out};
    if (op == "Gemm") n.attributes.push_back(onnx::Attribute{"transB", onnx::AttributeType::i, 0, 1, "", Tensor(), {}, {}});
    return n;
  };
  m.graph.nodes = {node("Identity", {"copy"}, "fc2.bias"), node("Identity", {"fc1.bias"}, "copy"),
                   node("Gemm", {"x", "fc1.weight", "fc1.bias"}, "h"), node("Gemm", {"h", "fc2.weight", "fc2.bias"}, "y")};
  m.graph.inputs = {"x"};
  m.graph.outputs = {"y"};
  nn::Sequential net;
  auto fc1 = std::make_shared<nn::Linear>(3, 2), fc2 = std::make_shared<nn::Linear>(2, 2);
  net.add(fc1).add(fc2);
  const ImportReport r = import_onnx(m, net);
  CHECK(r.linears == 2);
  CHECK(fc2->bias.to_vector() == std::vector<double>{0.5, -0.5});
  CHECK(fc1->weight.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
}
