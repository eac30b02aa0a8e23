// The torchvision-shaped models: parameter counts, state_dict names and shapes, and
// output shapes equal torchvision's, and the forward pass gives torchvision's logits.
// Fixtures: tests/fixtures/make_fixtures.py (models_keys.json, models_forward.safetensors).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/core/rng.h"
#include "engine/tensor/factory.h"
#include "models/mobilenet_v2.h"
#include "models/registry.h"
#include "models/resnet.h"
#include "models/vgg.h"
#include "test_util.h"
#include "weights/safetensors.h"

using namespace kiln;

namespace {

const nlohmann::json& keys_fixture() {
  static const nlohmann::json doc = [] {
    std::ifstream in(test::fixture_dir() + "/models_keys.json");
    REQUIRE_MESSAGE(in.good(), "models_keys.json missing; regenerate with /usr/bin/python3 tests/fixtures/make_fixtures.py");
    return nlohmann::json::parse(in);
  }();
  REQUIRE_MESSAGE(doc.value("magic", "") == "kiln-fixture", "models_keys.json is not a kiln fixture");
  REQUIRE_MESSAGE(doc.value("version", "") == "1", "models_keys.json version differs; ", doc.value("hint", ""));
  return doc;
}

SafeTensors forward_fixture() {
  SafeTensors f = load_safetensors(test::fixture_dir() + "/models_forward.safetensors");
  const std::string hint = f.metadata.count("hint") ? f.metadata.at("hint") : "";
  REQUIRE_MESSAGE(f.metadata["magic"] == "kiln-fixture", "not a kiln fixture; ", hint);
  REQUIRE_MESSAGE(f.metadata["version"] == "1", "fixture version differs; ", hint);
  return f;
}

// make_fixtures.py's hashed_tensor(), value for value: seed = FNV-1a-64 of the name,
// u_i = uniform01(seed, i), then U(lo, hi) by the kind of tensor.
Tensor hashed_tensor(const std::string& name, const Shape& shape) {
  uint64_t seed = 0xcbf29ce484222325ull;
  for (unsigned char byte : name) seed = (seed ^ byte) * 0x100000001b3ull;
  const bool ends_weight = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
  const bool ends_var = name.size() >= 11 && name.compare(name.size() - 11, 11, "running_var") == 0;
  double lo = -0.2, hi = 0.2;
  if (shape.dim() >= 2) {
    hi = std::sqrt(6.0 / static_cast<double>(shape.numel() / shape[0]));
    lo = -hi;
  } else if (ends_weight || ends_var) {
    lo = 0.5;
    hi = 1.5;
  }
  std::vector<double> values(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>(lo + (hi - lo) * static_cast<double>(uniform01(seed, i)));
  return from_vector(values, shape);
}

void load_hashed(nn::Module& model) {
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : model.state_dict()) state[name] = hashed_tensor(name, t.shape());
  model.load_state_dict(state);
}

void check_logits(nn::Module& model, const SafeTensors& f, const std::string& prefix) {
  model.eval();
  const Tensor logits = model.forward(f.at("input"));
  const std::vector<double> want = f.at(prefix + ".logits").to_vector();
  const double error = test::relative_l2(logits.to(DType::f64).to_vector(), want);
  MESSAGE(prefix << ": relative L2 error of the logits " << error);
  CHECK(logits.shape() == f.at(prefix + ".logits").shape());
  CHECK(error <= 1e-4);
}

Shape output_shape(nn::Module& model, int64_t size) {
  model.eval();
  Rng rng(7);
  return model.forward(randn({1, 3, size, size}, rng)).shape();
}

}  // namespace

TEST_CASE("models: the registry lists every architecture and rejects unknown names") {
  const std::vector<std::string> want = {"mobilenet_v2", "resnet101", "resnet18", "resnet34", "resnet50",
                                         "vgg11",        "vgg11_bn",  "vgg13",    "vgg13_bn", "vgg16",
                                         "vgg16_bn",     "vgg19",     "vgg19_bn"};
  CHECK(models::model_names() == want);
  test::expect_error_containing([] { models::make_model("resnet19", 10); },
                                {"unknown model 'resnet19'", "resnet18", "mobilenet_v2", "vgg19_bn"});
  models::ModelOptions wide;
  wide.width_multiplier = 2.0;
  test::expect_error_containing([&] { models::make_model("resnet18", 10, wide); }, {"width_multiplier"});
  CHECK(models::stage_names("resnet50") ==
        std::vector<std::string>{"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"});
  CHECK(models::stage_names("vgg11_bn") == std::vector<std::string>{"features", "classifier"});
  const auto mobilenet_stages = models::stage_names("mobilenet_v2");
  REQUIRE(mobilenet_stages.size() == 20);
  CHECK(mobilenet_stages.front() == "features.0");
  CHECK(mobilenet_stages[18] == "features.18");
  CHECK(mobilenet_stages.back() == "classifier");
}

// Same key set as torchvision's (sizes equal and every torchvision key present), with
// the same shapes; names without a key list in the fixture are only counted.
static void check_state_dict_keys(const nn::Module& net, const nlohmann::json& doc, const std::string& name) {
  if (!doc["state_dict_keys"].contains(name)) return;
  const std::map<std::string, Tensor> state = net.state_dict();
  CHECK(state.size() == doc["state_dict_keys"][name].size());
  for (const auto& entry : doc["state_dict_keys"][name]) {
    const std::string key = entry[0].get<std::string>();
    CAPTURE(key);
    REQUIRE(state.count(key) == 1);
    CHECK(state.at(key).shape() == Shape(entry[1].get<std::vector<int64_t>>()));
  }
}

TEST_CASE("models: resnet parameter counts and state_dict names equal torchvision's") {
  const nlohmann::json& doc = keys_fixture();
  for (const std::string name : {"resnet18", "resnet34", "resnet50", "resnet101"}) {
    CAPTURE(name);
    auto net = models::make_model(name, 1000);
    CHECK(net->parameter_count() == doc["parameter_counts"][name].get<int64_t>());
    check_state_dict_keys(*net, doc, name);
  }
}

TEST_CASE("models: vgg parameter counts and state_dict names equal torchvision's") {
  const nlohmann::json& doc = keys_fixture();
  for (const std::string name : {"vgg11", "vgg16", "vgg16_bn"}) {
    CAPTURE(name);
    auto net = models::make_model(name, 1000);  // 133M-138M floats: one at a time
    CHECK(net->parameter_count() == doc["parameter_counts"][name].get<int64_t>());
    check_state_dict_keys(*net, doc, name);
  }
}

TEST_CASE("models: mobilenet_v2 parameter count and state_dict names equal torchvision's") {
  const nlohmann::json& doc = keys_fixture();
  auto net = models::make_model("mobilenet_v2", 1000);
  CHECK(net->parameter_count() == doc["parameter_counts"]["mobilenet_v2"].get<int64_t>());
  CHECK(net->parameter_count() == 3504872);
  REQUIRE(doc["state_dict_keys"].contains("mobilenet_v2"));
  check_state_dict_keys(*net, doc, "mobilenet_v2");
  // torchvision's rounding of channel counts under a width multiplier.
  CHECK(models::make_divisible(32 * 0.25) == 8);
  CHECK(models::make_divisible(24 * 0.35) == 8);
  CHECK(models::make_divisible(32 * 0.75) == 24);
  CHECK(models::make_divisible(96 * 1.3) == 128);  // 124.8 rounds to 128, not 120
}

TEST_CASE("models: resnet and mobilenet_v2 output shapes at 32, 64 and 224 px") {
  for (const std::string name : {"resnet18", "resnet50", "mobilenet_v2"}) {
    CAPTURE(name);
    auto net = models::make_model(name, 7);
    for (int64_t size : {32, 64, 224}) {
      CAPTURE(size);
      CHECK(output_shape(*net, size) == Shape{1, 7});
    }
  }
  models::ModelOptions half;
  half.width_multiplier = 0.5;
  auto slim = models::make_model("mobilenet_v2", 3, half);
  CHECK(output_shape(*slim, 64) == Shape{1, 3});
}

TEST_CASE("models: vgg output shapes at 32, 64 and 224 px") {
  auto vgg = models::make_model("vgg11_bn", 5);
  for (int64_t size : {32, 64, 224}) {
    CAPTURE(size);
    CHECK(output_shape(*vgg, size) == Shape{1, 5});
  }
}

TEST_CASE("models: reset_head swaps the final Linear for a new class count") {
  auto net = models::make_model("mobilenet_v2", 10);
  net->freeze();
  models::reset_head(*net, "mobilenet_v2", 4);
  const auto state = net->state_dict();
  CHECK(state.at("classifier.1.weight").shape() == Shape{4, 1280});
  CHECK(state.at("classifier.1.bias").shape() == Shape{4});
  // A fresh head trains; the frozen backbone stays frozen.
  CHECK(net->parameter_count(/*trainable_only=*/true) == 4 * 1280 + 4);
  CHECK(output_shape(*net, 32) == Shape{1, 4});

  auto resnet = models::make_model("resnet18", 1000);
  models::reset_head(*resnet, "resnet18", 2);
  CHECK(resnet->state_dict().at("fc.weight").shape() == Shape{2, 512});
  CHECK(std::dynamic_pointer_cast<models::ResNet>(resnet)->head()->weight.shape() == Shape{2, 512});
  test::expect_error_containing([&] { models::reset_head(*resnet, "vgg11", 2); }, {"classifier"});
}

TEST_CASE("models: the module tree prints like torchvision's") {
  auto net = models::make_model("resnet18", 10);
  const std::string tree = net->to_string();
  CHECK(tree.find("(layer2): Sequential") != std::string::npos);
  CHECK(tree.find("(downsample): Sequential") != std::string::npos);
  CHECK(tree.find("(0): BasicBlock") != std::string::npos);
  auto mobilenet = models::make_model("mobilenet_v2", 10);
  CHECK(mobilenet->to_string().find("(0): Conv2dNormActivation") != std::string::npos);
}

TEST_CASE("models: mobilenet_v2 x0.25 forward matches torchvision in float32 on the CPU") {
  const SafeTensors f = forward_fixture();
  models::ModelOptions options;
  options.width_multiplier = 0.25;
  auto net = models::make_model("mobilenet_v2", 10, options);
  std::map<std::string, Tensor> state;
  const std::string prefix = "mobilenet_v2_w025.state.";
  for (auto& [name, t] : f.tensors)
    if (name.rfind(prefix, 0) == 0) state[name.substr(prefix.size())] = t;
  net->load_state_dict(state);  // strict: every torchvision name exists in kiln and back
  check_logits(*net, f, "mobilenet_v2_w025");
}

TEST_CASE("models: resnet18 forward matches torchvision in float32 on the CPU") {
  const SafeTensors f = forward_fixture();
  auto net = models::make_model("resnet18", 10);
  load_hashed(*net);
  check_logits(*net, f, "resnet18");
}

TEST_CASE("models: resnet50 forward matches torchvision in float32 on the CPU") {
  const SafeTensors f = forward_fixture();
  auto net = models::make_model("resnet50", 10);
  load_hashed(*net);
  check_logits(*net, f, "resnet50");
}

TEST_CASE("models: discriminative learning rates decay stage by stage from the head") {
  auto model = models::make_model("resnet18", 10);
  model->freeze("conv1.");  // frozen parameters join no group
  const auto groups = models::stage_param_groups(*model, "resnet18", 0.1, 1e-4, 0.5);
  // Stages: conv1 bn1 layer1 layer2 layer3 layer4 fc -> fc at 0.1, layer4 at 0.05, ..., bn1 at 0.1 * 0.5^5.
  double fc_lr = 0, layer4_lr = 0, bn1_lr = 0;
  int64_t counted = 0;
  for (const auto& g : groups) {
    if (g.name == "fc") fc_lr = g.lr;
    if (g.name == "layer4") layer4_lr = g.lr;
    if (g.name == "bn1 (no decay)") {
      bn1_lr = g.lr;
      CHECK(g.weight_decay == 0.0);
    }
    for (const Tensor& p : g.params) counted += p.numel();
  }
  CHECK(fc_lr == doctest::Approx(0.1));
  CHECK(layer4_lr == doctest::Approx(0.05));
  CHECK(bn1_lr == doctest::Approx(0.1 / 32));
  CHECK(counted == model->parameter_count(/*trainable_only=*/true));
  test::expect_error_containing([&] { models::stage_param_groups(*model, "resnet18", 0.1, 0, 1.5); }, {"decay"});
}
