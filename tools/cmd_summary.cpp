// `kiln summary --model cnn5 [cnn5 flags] --input 3x256x256` (or `--model
// resnet_custom [its flags] --classes K --input 3x64x64`): builds the model and
// prints one row per layer (output shape, parameters, MACs) and the totals, from a
// forward pass of one random image on the CPU (models/summary.h says how it counts);
// for resnet_custom also the receptive field of each stage.
#include <cstdio>

#include "engine/nn/init.h"
#include "models/summary.h"
#include "models/resnet_custom.h"
#include "tools/cnn5_options.h"
#include "tools/resnet_custom_options.h"
#include "tools/commands.h"

namespace kiln::tools {
namespace {

struct SummaryOptions {
  std::string model = "cnn5";
  Cnn5Options cnn5;  // also --classes and --input for resnet_custom
  ResNetCustomOptions resnet_custom;
} options;

int summarize_resnet_custom() {
  const Shape input = parse_input_shape(options.cnn5.input);
  const models::ResNetCustomConfig config = to_config(options.resnet_custom, input[0], options.cnn5.classes);
  nn::init::manual_seed(0);
  auto model = models::make_resnet_custom(config);
  const models::ModelSummary summary = models::summarize(*model, input);
  std::printf("%s\n\n%s\nreceptive field per stage (input %lldx%lld):\n", config.to_string().c_str(),
              summary.to_table().c_str(), static_cast<long long>(input[1]), static_cast<long long>(input[2]));
  for (const models::StageReceptiveField& f : models::receptive_fields(config))
    std::printf("  %-8s %5lld px  (stride %lld)\n", f.stage.c_str(), static_cast<long long>(f.receptive_field),
                static_cast<long long>(f.stride));
  return 0;
}

int run_summary() {
  // CLI11's IsMember check has already refused other names.
  if (options.model == "resnet_custom") return summarize_resnet_custom();
  const models::Cnn5Config config = to_config(options.cnn5);
  nn::init::manual_seed(0);  // the summary does not depend on the weights, but keep runs identical
  auto model = models::make_cnn5(config);
  const models::ModelSummary summary =
      models::summarize(*model, Shape{config.in_channels, config.input_size, config.input_size});
  std::printf("%s\n\n%s", config.to_string().c_str(), summary.to_table().c_str());
  return 0;
}

const bool registered = register_command({
    "summary",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("summary", "print a model's layers, output shapes, parameters and MACs");
      cmd->add_option("--model", options.model, "the model to build")
          ->check(CLI::IsMember({"cnn5", "resnet_custom"}))
          ->capture_default_str();
      add_cnn5_options(cmd, options.cnn5);
      add_resnet_custom_options(cmd, options.resnet_custom);
      add_cnn5_shape_options(cmd, options.cnn5);
    },
    run_summary,
});

}  // namespace
}  // namespace kiln::tools
