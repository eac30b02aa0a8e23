// `kiln check-rules RUN_DIR --rules tiny-imagenet`: rebuilds the run's model from
// its config.json and checks it and the run (config.json, split.json) against the
// rules (models/rules.h); prints every violation with the module or file, or "all
// rules hold", and keeps the result in RUN_DIR/rules.json for the report.
// `kiln check-rules --model M [model flags] --classes K --input CxHxW --rules ...`
// checks a model before any training (the run rules are then reported as not checked).
// Exit code 0 when every rule holds, 1 otherwise.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/nn/init.h"
#include "models/registry.h"
#include "models/resnet_custom.h"
#include "models/rules.h"
#include "tools/cnn5_options.h"
#include "tools/commands.h"
#include "tools/model_options.h"
#include "tools/resnet_custom_options.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

struct CheckRulesOptions {
  std::string run_dir;
  std::string rules = "tiny-imagenet";
  std::string model;
  Cnn5Options cnn5;  // also --classes and --input for every model
  ResNetCustomOptions resnet_custom;
} options;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "check-rules: cannot read ", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("check-rules: ", path, " is not valid JSON: ", e.what());
  }
}

std::shared_ptr<nn::Module> model_from_flags() {
  const Shape input = parse_input_shape(options.cnn5.input);
  nn::init::manual_seed(0);
  if (options.model == "cnn5") return models::make_cnn5(to_config(options.cnn5));
  if (options.model == "resnet_custom")
    return models::make_resnet_custom(to_config(options.resnet_custom, input[0], options.cnn5.classes));
  return models::make_model(options.model, options.cnn5.classes);  // names the valid ones
}

int run_check_rules() {
  const models::RuleSet rules = models::parse_rules(options.rules);
  KILN_CHECK(options.run_dir.empty() != options.model.empty(),
             "check-rules: give a run folder (kiln check-rules RUN_DIR) or a model (--model M), not ",
             options.run_dir.empty() ? "neither" : "both");
  models::RulesReport report;
  if (!options.model.empty()) {
    auto model = model_from_flags();
    report = models::check_rules(rules, model.get(), nullptr, nullptr);
    std::printf("%s, %lld parameters\n", options.model.c_str(), static_cast<long long>(model->parameter_count()));
  } else {
    const std::string dir = options.run_dir;
    const nlohmann::json config = read_json(dir + "/config.json");
    const BuiltModel built = build_model_from_config(config);
    const bool has_split = std::filesystem::exists(dir + "/split.json");
    const nlohmann::json split = has_split ? read_json(dir + "/split.json") : nlohmann::json();
    report = models::check_rules(rules, built.module.get(), &config, has_split ? &split : nullptr);
    std::printf("%s: %s, %lld parameters\n", dir.c_str(), built.description.c_str(),
                static_cast<long long>(built.module->parameter_count()));
    nlohmann::json stored = report.to_json();
    stored["rules"] = rules.spec;
    write_file_atomically(dir + "/rules.json", [&](std::ostream& out) { out << stored.dump(2) << "\n"; });
  }
  std::printf("rules %s:\n%s", rules.spec.c_str(), report.to_text().c_str());
  return report.holds() ? 0 : 1;
}

const bool registered = register_command({
    "check-rules",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("check-rules", "check a run or a model against benchmark rules");
      cmd->add_option("run_dir", options.run_dir, "a kiln train run folder (config.json, split.json)");
      cmd->add_option("--rules", options.rules,
                      "tiny-imagenet, or a list: no-dropout,no-fc,no-1x1-expand,max-params=26M,max-epochs=500,"
                      "no-pretrained,no-val-in-train")
          ->capture_default_str();
      cmd->add_option("--model", options.model, "check this model instead of a run: cnn5, resnet_custom or a zoo name");
      add_cnn5_options(cmd, options.cnn5);
      add_cnn5_shape_options(cmd, options.cnn5);
      add_resnet_custom_options(cmd, options.resnet_custom);
    },
    run_check_rules,
});

}  // namespace
}  // namespace kiln::tools
