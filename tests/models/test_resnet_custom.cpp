// models/resnet_custom: the module tree, names, shapes and parameter count against
// an independent PyTorch implementation (tests/fixtures/resnet_custom_fixtures.py,
// three configurations: separable and plain ResNet-18-shaped nets for 200 classes,
// a pre-activation separable bottleneck net with a 7x7 stem), then forward and
// backward on small configurations of every kind, and the errors that name a flag.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "models/blocks.h"
#include "models/resnet_custom.h"
#include "models/summary.h"
#include "test_util.h"

using namespace kiln;

namespace {

models::ResNetCustomConfig config_from_fixture(const nlohmann::json& c) {
  models::ResNetCustomConfig config;
  config.block = c.at("blocks") == "basic" ? models::BlockKind::basic : models::BlockKind::bottleneck;
  config.depths = c.at("depths").get<std::vector<int>>();
  config.widths = c.at("widths").get<std::vector<int64_t>>();
  config.stem = c.at("stem").get<std::string>();
  config.separable = c.at("separable").get<bool>();
  config.preact = c.at("preact").get<bool>();
  config.num_classes = c.at("classes").get<int64_t>();
  return config;
}

}  // namespace

TEST_CASE("resnet_custom: names, shapes and parameter count equal a PyTorch implementation") {
  std::ifstream in(test::fixture_dir() + "/resnet_custom_params.json");
  REQUIRE_MESSAGE(in.good(), "missing resnet_custom_params.json: run tests/fixtures/resnet_custom_fixtures.py");
  const nlohmann::json fixture = nlohmann::json::parse(in);
  REQUIRE(fixture.at("configs").size() == 3);
  for (const nlohmann::json& entry : fixture.at("configs")) {
    const models::ResNetCustomConfig config = config_from_fixture(entry.at("config"));
    CAPTURE(config.to_string());
    const auto net = models::make_resnet_custom(config);
    CHECK(net->parameter_count() == entry.at("parameters").get<int64_t>());
    std::map<std::string, Shape> want;
    for (const auto& [name, shape] : entry.at("state_dict").items()) want[name] = Shape(shape.get<std::vector<int64_t>>());
    std::map<std::string, Shape> got;
    for (const auto& [name, tensor] : net->state_dict())
      if (name.find("num_batches_tracked") == std::string::npos) got[name] = tensor.shape();
    CHECK(got.size() == want.size());
    for (const auto& [name, shape] : want) {
      CAPTURE(name);
      REQUIRE(got.count(name) == 1);
      CHECK(got.at(name) == shape);
    }
    // The "no FC" rule: no Linear anywhere, the classifier is a 1x1 conv.
    int linears = 0;
    models::for_each_module(*net, [&](const std::string&, nn::Module& m) {
      linears += dynamic_cast<nn::Linear*>(&m) != nullptr ? 1 : 0;
    });
    CHECK(linears == 0);
  }
}

TEST_CASE("resnet_custom: forward and backward of every kind, and a few SGD steps lower the loss") {
  struct Case {
    models::BlockKind block;
    bool separable, preact;
    std::string stem;
  };
  const std::vector<Case> cases = {{models::BlockKind::basic, true, false, "3x3"},
                                   {models::BlockKind::basic, false, true, "3x3"},
                                   {models::BlockKind::bottleneck, true, true, "7x7"},
                                   {models::BlockKind::bottleneck, false, false, "3x3"}};
  for (const Case& c : cases) {
    models::ResNetCustomConfig config;
    config.block = c.block;
    config.separable = c.separable;
    config.preact = c.preact;
    config.stem = c.stem;
    config.depths = {1, 2};
    config.widths = {8, 12};
    config.num_classes = 5;
    CAPTURE(config.to_string());
    const auto net = models::make_resnet_custom(config);
    Rng rng(3);
    const Tensor x = uniform({4, 3, 16, 16}, -1, 1, rng);
    const Tensor labels = from_vector({0, 1, 2, 3}, {4}, {DType::i64});
    auto sgd = optim::make_optimizer("sgd", net->trainable_parameters(), {0.05});
    double first_loss = 0, last_loss = 0;
    for (int step = 0; step < 6; ++step) {
      sgd->zero_grad();
      const Tensor logits = net->forward(x);
      REQUIRE(logits.shape() == Shape({4, 5}));
      const Tensor loss = cross_entropy(logits, labels);
      loss.backward();
      if (step == 0) {
        first_loss = loss.item();
        for (const auto& [name, p] : net->named_parameters()) {
          CAPTURE(name);
          REQUIRE(p.grad().defined());
          for (double g : p.grad().to_vector()) REQUIRE(std::isfinite(g));
        }
      }
      last_loss = loss.item();
      sgd->step();
    }
    CHECK(last_loss < first_loss);
  }
}

TEST_CASE("resnet_custom: bad configurations and inputs name the flag or the size") {
  models::ResNetCustomConfig config;
  config.depths = {2, 2, 2};
  test::expect_error_containing([&] { models::make_resnet_custom(config); }, {"--depths has 3", "--widths 4"});
  config = {};
  config.stem = "5x5";
  test::expect_error_containing([&] { models::make_resnet_custom(config); }, {"--stem", "'5x5'"});
  config = {};
  config.depths = {2, 0, 2, 2};
  test::expect_error_containing([&] { models::make_resnet_custom(config); }, {"--depths", "stage 2"});
  config = {};
  config.depths = {1, 1};
  config.widths = {4, 8};
  const auto net = models::make_resnet_custom(config);  // halves H and W once: needs even sizes
  test::expect_error_containing([&] { net->forward(zeros({1, 3, 15, 15})); }, {"divisible by 2", "15x15"});
  test::expect_error_containing([&] { models::ResNetCustomConfig::from_json({{"blocks", "basic"}}); },
                                {"resnet_custom configuration"});
  // The JSON a checkpoint keeps rebuilds the same configuration.
  config.separable = true;
  config.block = models::BlockKind::bottleneck;
  CHECK(models::ResNetCustomConfig::from_json(config.to_json()).to_json() == config.to_json());
}

TEST_CASE("resnet_custom: kiln summary counts every conv inside the blocks, and the receptive field per stage") {
  // One basic block of width 4 on a 3x8x8 input, 3 classes, by hand:
  //   stem conv 4*3*9*64 = 6912 MACs, 108 weights; bn 8
  //   block conv1, conv2: 4*4*9*64 = 9216 MACs, 144 weights each; bn1, bn2: 8 each
  //   classifier 1x1 on the pooled map: 3*4 = 12 MACs, 12 weights + 3 biases
  models::ResNetCustomConfig config;
  config.depths = {1};
  config.widths = {4};
  config.num_classes = 3;
  const auto net = models::make_resnet_custom(config);
  const models::ModelSummary summary = models::summarize(*net, Shape{3, 8, 8});
  CHECK(summary.uncounted.empty());
  CHECK(summary.total_macs == 6912 + 2 * 9216 + 12);
  CHECK(summary.total_parameters == 108 + 8 + 2 * 144 + 2 * 8 + 12 + 3);
  CHECK(summary.total_parameters == net->parameter_count());
  bool saw_block_conv = false;
  for (const models::LayerSummary& row : summary.layers)
    saw_block_conv = saw_block_conv || (row.name == "layer1.0.conv2" && row.macs == 9216);
  CHECK(saw_block_conv);
  // Separable: the summary's total is the whole net's count, shared relus counted once.
  config.separable = true;
  config.preact = true;
  config.depths = {1, 1};
  config.widths = {4, 8};
  const auto separable = models::make_resnet_custom(config);
  CHECK(models::summarize(*separable, Shape{3, 8, 8}).total_parameters == separable->parameter_count());

  // The 7x7 stem with ResNet-18's depths gives torchvision ResNet-18's well-known 435 px.
  models::ResNetCustomConfig resnet18_like;
  resnet18_like.stem = "7x7";
  const auto fields = models::receptive_fields(resnet18_like);
  REQUIRE(fields.size() == 5);
  CHECK(fields[0].receptive_field == 11);  // 7x7/2 then 3x3/2 max-pool
  CHECK(fields[4].stage == "layer4");
  CHECK(fields[4].receptive_field == 435);
  CHECK(fields[4].stride == 32);
  // The 3x3 stem (small images): 3, then 8 more per stride unit per conv: 109 px at layer4.
  resnet18_like.stem = "3x3";
  CHECK(models::receptive_fields(resnet18_like).back().receptive_field == 109);
}
