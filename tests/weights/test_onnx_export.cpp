// export_onnx and the ONNX writer: what is written parses back; every model exports
// (batch norm kept and folded) to a graph that kiln's importer loads back into a
// fresh model giving the native logits; the node mapping (Clip bounds, depthwise
// groups, activations per opset, VGG's pool) and the errors that name a module.
// The independent check with torch is tests/fixtures/onnx_eval_with_torch.py (a
// CLI test in tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/autograd/grad_mode.h"
#include "engine/core/rng.h"
#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "models/blocks.h"
#include "models/cnn5.h"
#include "models/registry.h"
#include "test_util.h"
#include "weights/onnx_export.h"
#include "weights/onnx_import.h"

using namespace kiln;

namespace {

// Batch-norm statistics and biases away from their initial 1/0 values, so that a
// mistake in the batch-norm mapping or the folding shows in the logits.
void randomise(nn::Module& model, uint64_t seed) {
  Rng rng(seed);
  NoGradGuard no_grad;
  const auto fill = [&](const Tensor& t, double lo, double hi) {
    std::vector<double> v(static_cast<size_t>(t.numel()));
    for (double& x : v) x = rng.uniform(lo, hi);
    copy_(t, from_vector(v, t.shape()));
  };
  models::for_each_module(model, [&](const std::string&, nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
      fill(bn->weight, 0.5, 1.5);
      fill(bn->bias, -0.2, 0.2);
      fill(bn->running_mean, -0.2, 0.2);
      fill(bn->running_var, 0.5, 2.0);
    } else if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      if (conv->bias.defined()) fill(conv->bias, -0.1, 0.1);
    } else if (auto* linear = dynamic_cast<nn::Linear*>(&m)) {
      if (linear->bias.defined()) fill(linear->bias, -0.1, 0.1);
    }
  });
}

struct RoundTrip {
  double error = 0;               // relative L2 of the re-imported model's logits
  std::vector<onnx::Node> nodes;  // the exported graph, without its weights
  std::map<std::string, int> ops;
  int folded = 0, kept = 0;
  std::vector<onnx::ValueInfo> inputs, outputs;
  ImportReport report;
};

// Native model -> ONNX bytes (batch norm kept, then folded) -> parse -> import
// into a second model of the same architecture, every tensor of which is NaN until
// the importer writes it -> logits of both on the same batch. The native model is
// dropped before the second is built, and the second is reused for both files: a
// VGG weighs 0.5 GB and takes seconds to initialise.
std::vector<RoundTrip> round_trips(const std::function<nn::ModulePtr()>& make, const Shape& image) {
  std::vector<RoundTrip> results(2);
  std::vector<std::string> files(2);
  std::vector<int64_t> batch_dims = {2};
  for (int64_t d : image.dims()) batch_dims.push_back(d);
  Rng rng(7);
  const Tensor input = randn(Shape(batch_dims), rng);
  NoGradGuard no_grad;
  std::vector<double> want;
  {
    nn::ModulePtr native = make();
    randomise(*native, 11);
    native->eval();
    want = native->forward(input).to_vector();
    for (int fold = 0; fold < 2; ++fold) {
      OnnxExportOptions options;
      options.input_shape = image;
      options.fold_batchnorm = fold == 1;
      const OnnxExport exported = export_onnx(*native, options);
      files[fold] = serialize_onnx(exported.model);
      RoundTrip& r = results[fold];
      r.nodes = exported.model.nodes;
      r.ops = exported.ops;
      r.folded = exported.folded_batchnorms;
      r.kept = exported.kept_batchnorms;
      r.inputs = exported.model.inputs;
      r.outputs = exported.model.outputs;
    }
  }
  nn::ModulePtr imported = make();
  for (int fold = 0; fold < 2; ++fold) {
    const onnx::Model parsed = onnx::parse_onnx(files[fold], fold ? "folded.onnx" : "kept.onnx");
    files[fold] = std::string();
    for (auto& [name, tensor] : imported->state_dict()) fill_(tensor, NAN);
    results[fold].report = import_onnx(parsed, *imported);
    imported->eval();
    results[fold].error = test::relative_l2(imported->forward(input).to_vector(), want);
  }
  return results;
}

// Batch norm kept: the imported model holds the very same numbers and computes the
// same operations, so its logits are the native ones up to nothing but thread
// scheduling. Folded: conv(x, w * s) + b' rounds differently from conv(x, w) then
// the batch norm, about one f32 ulp (6e-8) per layer; through ResNet-50's 53 convs
// with random batch-norm statistics that reaches 1e-6 (measured up to 1.05e-6).
double tolerance(bool folded) { return folded ? 4e-6 : 1e-6; }

const onnx::Node* find_node(const std::vector<onnx::Node>& nodes, const std::string& name) {
  for (const onnx::Node& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

std::function<nn::ModulePtr()> zoo(const std::string& name, int64_t classes, models::ModelOptions options = {}) {
  return [=] { return models::make_model(name, classes, options); };
}

models::Cnn5Config small_cnn5() {
  models::Cnn5Config c;
  c.input_size = 32;
  c.filters = {4, 6, 8, 8, 8};
  c.dense_units = 12;
  c.num_classes = 5;
  c.dropout_where = "both";
  return c;
}

}  // namespace

TEST_CASE("onnx writer: a written model parses back field by field") {
  onnx::ModelDraft draft;
  draft.opset = 13;
  draft.ir_version = 7;
  draft.graph_name = "g";
  draft.initializers.emplace_back("w", from_vector({1.5, -2, 3.25, 0, 1e-3, 7}, Shape{2, 3}));
  draft.initializers.emplace_back("shape", from_vector({1, -1, 300}, Shape{3}, {DType::i64}));
  onnx::Node n;
  n.name = "node/Op";
  n.op_type = "Op";
  n.inputs = {"input", "", "w"};  // "" is an omitted optional input
  n.outputs = {"logits"};
  n.attributes = {onnx::int_attribute("negative", -3), onnx::float_attribute("f", 0.1f),
                  onnx::ints_attribute("ints", {1, 300, -1}), onnx::string_attribute("s", "NOTSET")};
  draft.nodes = {n};
  draft.inputs = {{"input", {{-1, "N"}, {3, ""}}}};
  draft.outputs = {{"logits", {{-1, "N"}, {2, ""}}}};
  const onnx::Model m = onnx::parse_onnx(onnx::serialize_onnx(draft), "written.onnx");
  CHECK(m.ir_version == 7);
  CHECK(m.opsets.at("") == 13);
  CHECK(m.graph.name == "g");
  CHECK(m.graph.inputs == std::vector<std::string>{"input"});
  CHECK(m.graph.outputs == std::vector<std::string>{"logits"});
  CHECK(m.graph.initializer_order == std::vector<std::string>{"w", "shape"});
  CHECK(m.graph.initializers.at("w").shape() == Shape{2, 3});
  CHECK(m.graph.initializers.at("w").to_vector() == draft.initializers[0].second.to_vector());
  CHECK(m.graph.initializers.at("shape").dtype() == DType::i64);
  CHECK(m.graph.initializers.at("shape").to_vector() == std::vector<double>{1, -1, 300});
  REQUIRE(m.graph.nodes.size() == 1);
  const onnx::Node& read = m.graph.nodes[0];
  CHECK(read.name == "node/Op");
  CHECK(read.op_type == "Op");
  CHECK(read.inputs == n.inputs);
  CHECK(read.outputs == n.outputs);
  CHECK(read.get_int("negative", 0) == -3);  // a negative varint is ten bytes
  CHECK(read.get_float("f", 0) == 0.1f);
  CHECK(read.get_ints("ints", {}) == std::vector<int64_t>{1, 300, -1});
  CHECK(read.find("s")->s == "NOTSET");
  CHECK(read.find("s")->type == onnx::AttributeType::s);
  CHECK(draft.inputs[0].to_string() == "input: f32 (N, 3)");
}

TEST_CASE("onnx export: the varint and key bytes are protobuf's") {
  // ir_version 300 is field 1, varint: key 0x08, then 300 = ac 02 (docs/onnx.md).
  onnx::ModelDraft draft;
  draft.ir_version = 300;
  const std::string bytes = onnx::serialize_onnx(draft);
  REQUIRE(bytes.size() >= 3);
  CHECK(static_cast<uint8_t>(bytes[0]) == 0x08);
  CHECK(static_cast<uint8_t>(bytes[1]) == 0xac);
  CHECK(static_cast<uint8_t>(bytes[2]) == 0x02);
}

TEST_CASE("onnx export: cnn5 round-trips through kiln's importer, batch norm kept and folded") {
  const models::Cnn5Config small = small_cnn5();
  const std::vector<RoundTrip> both = round_trips([&] { return models::make_cnn5(small); }, Shape{3, 32, 32});
  for (const bool fold : {false, true}) {
    CAPTURE(fold);
    const RoundTrip& r = both[fold];
    CHECK(r.error <= tolerance(fold));
    CHECK(r.ops.at("Conv") == 5);
    CHECK(r.ops.at("MaxPool") == 5);
    CHECK(r.ops.at("Gemm") == 2);
    CHECK(r.ops.at("Relu") == 6);
    CHECK(r.ops.count("Dropout") == 0);  // the identity at inference: no node
    CHECK(r.kept == (fold ? 0 : 5));
    CHECK(r.folded == (fold ? 5 : 0));
    CHECK(r.ops.count("BatchNormalization") == (fold ? 0 : 1));
    CHECK(r.report.folded_batchnorms == (fold ? 5 : 0));
    REQUIRE(r.inputs.size() == 1);
    CHECK(r.inputs[0].to_string() == "input: f32 (N, 3, 32, 32)");
    CHECK(r.outputs[0].to_string() == "logits: f32 (N, 5)");
  }
  // Without batch norm, with ReLU6 and valid padding: convs carry their own bias.
  models::Cnn5Config config = small_cnn5();
  config.batch_norm = false;
  config.activation = Activation::relu6;
  config.padding = "valid";
  config.in_channels = 1;
  config.input_size = 96;
  for (const RoundTrip& r : round_trips([&] { return models::make_cnn5(config); }, Shape{1, 96, 96})) {
    CHECK(r.error <= tolerance(false));  // no batch norm: nothing to fold
    CHECK(r.ops.at("Clip") == 6);
    CHECK(r.folded + r.kept == 0);
  }
}

TEST_CASE("onnx export: resnet18 and resnet50 round-trip, batch norm kept and folded") {
  for (const std::string arch : {"resnet18", "resnet50"}) {
    const std::vector<RoundTrip> both = round_trips(zoo(arch, 10), Shape{3, 64, 64});
    for (const bool fold : {false, true}) {
      CAPTURE(arch);
      CAPTURE(fold);
      const RoundTrip& r = both[fold];
      CHECK(r.error <= tolerance(fold));
      const int convs = arch == "resnet18" ? 20 : 53;
      CHECK(r.ops.at("Conv") == convs);
      CHECK(r.ops.at("Add") == (arch == "resnet18" ? 8 : 16));
      CHECK(r.ops.at("GlobalAveragePool") == 1);
      CHECK(r.report.convs == convs);
      CHECK(r.report.batchnorms == convs);
      CHECK(r.folded == (fold ? convs : 0));
      // The residual Add reads the main branch and the shortcut (the downsample here).
      const onnx::Node* add = find_node(r.nodes, "layer2.0/Add");
      REQUIRE(add != nullptr);
      CHECK(add->inputs[1] == (fold ? "layer2.0.downsample.0/Conv" : "layer2.0.downsample.1/BatchNormalization"));
    }
  }
}

TEST_CASE("onnx export: vgg11_bn round-trips at 32 px, its 1x1 -> 7x7 pool as Expand") {
  const std::vector<RoundTrip> both = round_trips(zoo("vgg11_bn", 4), Shape{3, 32, 32});
  for (const bool fold : {false, true}) {
    CAPTURE(fold);
    const RoundTrip& r = both[fold];
    CHECK(r.error <= tolerance(fold));
    CHECK(r.ops.at("Conv") == 8);
    CHECK(r.ops.at("Expand") == 1);
    CHECK(r.ops.at("Gemm") == 3);
    CHECK(r.folded == (fold ? 8 : 0));
    // VGG's convs keep their bias under batch norm; folding puts (b - mean) s + beta there.
    CHECK(r.report.linears == 3);
  }
}

TEST_CASE("onnx export: mobilenet_v2 round-trips, depthwise convs carry group = C, ReLU6 is Clip(0, 6)") {
  models::ModelOptions half;
  half.width_multiplier = 0.5;
  const std::vector<RoundTrip> both = round_trips(zoo("mobilenet_v2", 6, half), Shape{3, 64, 64});
  for (const bool fold : {false, true}) {
    CAPTURE(fold);
    const RoundTrip& r = both[fold];
    CHECK(r.error <= tolerance(fold));
    CHECK(r.ops.at("Conv") == 52);
    CHECK(r.ops.at("Clip") == 35);
    CHECK(r.ops.at("Add") == 10);
    CHECK(r.folded == (fold ? 52 : 0));
    CHECK(r.report.folded_batchnorms == (fold ? 52 : 0));
    // features.1 is the first inverted residual (t = 1): conv.0 is its depthwise ConvBNAct.
    const onnx::Node* depthwise = find_node(r.nodes, "features.1.conv.0.0/Conv");
    REQUIRE(depthwise != nullptr);
    CHECK(depthwise->get_int("group", 1) == 16);  // make_divisible(32 * 0.5) channels
    const onnx::Node* clip = find_node(r.nodes, "features.0.2/Clip");
    REQUIRE(clip != nullptr);
    CHECK(clip->inputs.size() == 3);
  }
}

TEST_CASE("onnx export: each cnn5 activation maps to its ONNX nodes, per opset") {
  struct Case {
    Activation activation;
    std::set<std::string> ops;  // the nodes one activation becomes
  };
  const Case cases[] = {
      {Activation::relu, {"Relu"}},         {Activation::relu6, {"Clip"}},
      {Activation::leaky_relu, {"LeakyRelu"}}, {Activation::elu, {"Elu"}},
      {Activation::sigmoid, {"Sigmoid"}},   {Activation::tanh, {"Tanh"}},
      {Activation::silu, {"Sigmoid", "Mul"}}, {Activation::mish, {"Softplus", "Tanh", "Mul"}},
      {Activation::gelu, {"Div", "Erf", "Add", "Mul"}}, {Activation::hardswish, {"HardSigmoid", "Mul"}},
  };
  for (const Case& c : cases) {
    CAPTURE(activation_name(c.activation));
    models::Cnn5Config config = small_cnn5();
    config.activation = c.activation;
    auto net = models::make_cnn5(config);
    OnnxExportOptions options;
    options.input_shape = Shape{3, 32, 32};
    const OnnxExport e = export_onnx(*net, options);
    std::set<std::string> activation_ops;
    for (const auto& [op, count] : e.ops)
      if (!std::set<std::string>{"Conv", "BatchNormalization", "MaxPool", "Flatten", "Gemm"}.count(op))
        activation_ops.insert(op);
    CHECK(activation_ops == c.ops);
  }
  models::Cnn5Config config = small_cnn5();
  config.activation = Activation::hardswish;
  auto net = models::make_cnn5(config);
  OnnxExportOptions options;
  options.input_shape = Shape{3, 32, 32};
  options.opset = 14;  // HardSwish exists from opset 14
  const OnnxExport e = export_onnx(*net, options);
  CHECK(e.ops.at("HardSwish") == 6);
  CHECK(e.ops.count("HardSigmoid") == 0);
  CHECK(e.model.opset == 14);
}

// conv 3x3 -> AdaptiveAvgPool2d(7, 7) "avgpool" -> flatten -> linear: VGG's head
// without VGG's 0.5 GB, for the graph-only tests below.
std::shared_ptr<nn::Sequential> adaptive_pool_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1))
      .add("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(7, 7))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(4 * 7 * 7, 3));
  return net;
}

TEST_CASE("onnx export: errors name the module, the sizes and the option") {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1))
      .add("pool", std::make_shared<nn::AvgPool2d>(Pool2dParams{}))
      .add(std::make_shared<nn::Flatten>());
  OnnxExportOptions options;
  options.input_shape = Shape{3, 8, 8};
  test::expect_error_containing([&] { export_onnx(*net, options); },
                                {"module 'pool'", "(AvgPool2d)", "has no ONNX mapping"});
  auto pooled = adaptive_pool_net();
  options.input_shape = Shape{3, 2, 2};  // 7x7 is not a multiple of 2x2 (VGG at 64 px)
  test::expect_error_containing([&] { export_onnx(*pooled, options); },
                                {"AdaptiveAvgPool2d 'avgpool'", "pools 2x2 to 7x7", "e.g. 32 or 224"});
  options.input_shape = Shape{1, 7, 7};
  test::expect_error_containing([&] { export_onnx(*pooled, options); }, {"Conv2d '0' takes 3 channels", "(N, 1, 7, 7)"});
  options.input_shape = Shape{3, 7, 7};
  options.opset = 12;
  test::expect_error_containing([&] { export_onnx(*pooled, options); }, {"opset must be 13..17, got 12"});
}

TEST_CASE("onnx export: adaptive pooling to 7x7 is nothing from 7x7, AveragePool from 14x14, Expand from 1x1") {
  auto net = adaptive_pool_net();
  OnnxExportOptions options;
  options.input_shape = Shape{3, 7, 7};  // VGG at 224 px
  const OnnxExport same = export_onnx(*net, options);
  CHECK(same.ops.count("AveragePool") == 0);
  CHECK(same.ops.count("Expand") == 0);
  options.input_shape = Shape{3, 14, 14};  // VGG at 448 px
  const OnnxExport halved = export_onnx(*net, options);
  REQUIRE(halved.ops.at("AveragePool") == 1);
  const onnx::Node* pool = find_node(halved.model.nodes, "avgpool/AveragePool");
  REQUIRE(pool != nullptr);
  CHECK(pool->get_ints("kernel_shape", {}) == std::vector<int64_t>{2, 2});
  CHECK(pool->get_ints("strides", {}) == std::vector<int64_t>{2, 2});
  options.input_shape = Shape{3, 1, 1};  // VGG at 32 px
  const OnnxExport broadcast = export_onnx(*net, options);
  const onnx::Node* expand = find_node(broadcast.model.nodes, "avgpool/Expand");
  REQUIRE(expand != nullptr);
  const auto& inits = broadcast.model.initializers;
  const auto shape = std::find_if(inits.begin(), inits.end(), [&](const auto& i) { return i.first == expand->inputs[1]; });
  REQUIRE(shape != inits.end());
  CHECK(shape->second.dtype() == DType::i64);
  CHECK(shape->second.to_vector() == std::vector<double>{1, 1, 7, 7});
}
