// Benchmark rules (models/rules.h): a separable resnet_custom passes the
// tiny-imagenet model rules; a net with dropout, an FC layer and a 1x1 expansion
// gets one violation each, naming the module; the parameter cap names the largest
// layers; the run rules read config.json and split.json.
#include <doctest/doctest.h>

#include "engine/nn/layers.h"
#include "models/resnet_custom.h"
#include "models/rules.h"
#include "test_util.h"

using namespace kiln;

namespace {

bool has_violation(const models::RulesReport& report, const std::string& rule, const std::string& where) {
  for (const models::RuleViolation& v : report.violations)
    if (v.rule == rule && v.where == where) return true;
  return false;
}

}  // namespace

TEST_CASE("rules: a separable resnet_custom for 200 classes holds every tiny-imagenet model rule") {
  models::ResNetCustomConfig config;
  config.separable = true;
  config.num_classes = 200;
  auto net = models::make_resnet_custom(config);
  const models::RulesReport report = models::check_rules(models::parse_rules("tiny-imagenet"), net.get(), nullptr, nullptr);
  CHECK(report.holds());
  CHECK(report.to_text().find("all checked rules hold") != std::string::npos);
  CHECK(report.not_checked.size() == 2);  // the run rules: no config, no split given
  // One verdict per rule of the set, for the run report's table.
  using Verdicts = std::vector<std::pair<std::string, std::string>>;
  CHECK(report.verdicts == Verdicts{{"no-dropout", "holds"},
                                    {"no-fc", "holds"},
                                    {"no-1x1-expand", "holds"},
                                    {"max-params", "holds"},
                                    {"max-epochs", "not checked (no run config)"},
                                    {"no-pretrained", "not checked (no run config)"},
                                    {"no-val-in-train", "not checked (no split.json)"}});
  CHECK(report.to_json()["verdicts"][6]["verdict"] == "not checked (no split.json)");
  // The plain (not separable) net widens with 1x1 projections on its shortcuts.
  config.separable = false;
  auto plain = models::make_resnet_custom(config);
  const auto plain_report = models::check_rules(models::parse_rules("no-1x1-expand"), plain.get(), nullptr, nullptr);
  CHECK(has_violation(plain_report, "no-1x1-expand", "layer2.0.downsample.0"));
  CHECK(plain_report.violations.size() == 3);  // layer2, layer3, layer4
}

TEST_CASE("rules: dropout, a fully connected layer and a 1x1 expansion are each named by module") {
  nn::Sequential net;
  net.add(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1));
  net.add(std::make_shared<nn::Conv2d>(8, 32, 1));  // "1": a 1x1 conv widening 8 -> 32
  net.add(std::make_shared<nn::Conv2d>(32, 16, 1));  // narrowing: allowed
  net.add(std::make_shared<nn::Dropout>(0.3));       // "3"
  net.add(std::make_shared<nn::AdaptiveAvgPool2d>(1, 1));
  net.add(std::make_shared<nn::Flatten>());
  net.add(std::make_shared<nn::Linear>(16, 10));     // "6"
  const models::RulesReport report =
      models::check_rules(models::parse_rules("no-dropout,no-fc,no-1x1-expand"), &net, nullptr, nullptr);
  CHECK(report.violations.size() == 3);
  CHECK(has_violation(report, "no-1x1-expand", "1"));
  CHECK(has_violation(report, "no-dropout", "3"));
  CHECK(has_violation(report, "no-fc", "6"));
  CHECK(report.verdicts == std::vector<std::pair<std::string, std::string>>{
                               {"no-dropout", "violated"}, {"no-fc", "violated"}, {"no-1x1-expand", "violated"}});
  const std::string text = report.to_text();
  CHECK(text.find("violation: no-fc at 6: Linear(16 -> 10)") != std::string::npos);
  CHECK(text.find("all rules hold") == std::string::npos);
}

TEST_CASE("rules: the parameter cap names the count and the five largest layers") {
  models::ResNetCustomConfig config;  // 11.2M parameters, the ResNet-18 shape
  config.num_classes = 200;
  auto net = models::make_resnet_custom(config);
  const auto report = models::check_rules(models::parse_rules("max-params=10M"), net.get(), nullptr, nullptr);
  REQUIRE(report.violations.size() == 1);
  const std::string detail = report.violations[0].detail;
  CHECK(detail.find("11,271,432 parameters > 10,000,000") != std::string::npos);
  CHECK(detail.find("layer4.1.conv2 2,359,296") != std::string::npos);  // 512 * 512 * 9
  CHECK(models::largest_layers(*net).size() == 5);
  CHECK(models::check_rules(models::parse_rules("max-params=26M"), net.get(), nullptr, nullptr).holds());
  CHECK(models::parse_count("1.5K", "x") == 1500);
}

TEST_CASE("rules: the run rules read the config and the split, and bad rules are named") {
  const nlohmann::json config = {{"epochs", 600}, {"model", {{"arch", "resnet18"}, {"pretrained", "r18.onnx"}}}};
  const nlohmann::json split = {{"train", {"a", "b", "c"}}, {"val", {"d", "b"}}, {"test", {"e"}}};
  const auto report = models::check_rules(models::parse_rules("tiny-imagenet"), nullptr, &config, &split);
  CHECK(has_violation(report, "max-epochs", "config.json"));
  CHECK(has_violation(report, "no-pretrained", "config.json"));
  CHECK(has_violation(report, "no-val-in-train", "split.json"));
  CHECK(report.to_text().find("1 val image(s) also in train, the first 'b'") != std::string::npos);
  const nlohmann::json clean_config = {{"epochs", 500}, {"model", {{"arch", "cnn5"}}}};
  const nlohmann::json clean_split = {{"train", {"a"}}, {"val", {"b"}}};
  CHECK(models::check_rules(models::parse_rules("max-epochs=500,no-pretrained,no-val-in-train"), nullptr,
                            &clean_config, &clean_split)
            .holds());
  test::expect_error_containing([] { models::parse_rules("no-dropout,no-batchnorm"); },
                                {"unknown rule 'no-batchnorm'", "no-fc"});
  test::expect_error_containing([] { models::parse_rules("max-params=lots"); }, {"max-params", "'lots'"});
}
