// `kiln summary --model cnn5 [cnn5 flags] --input 3x256x256`: builds the model and
// prints one row per layer (output shape, parameters, MACs) and the totals, from a
// forward pass of one random image on the CPU (models/summary.h says how it counts).
#include <cstdio>

#include "engine/nn/init.h"
#include "models/summary.h"
#include "tools/cnn5_options.h"
#include "tools/commands.h"

namespace kiln::tools {
namespace {

struct SummaryOptions {
  std::string model = "cnn5";
  Cnn5Options cnn5;
} options;

int run_summary() {
  // Only cnn5 exists so far; CLI11's IsMember check has already refused other names.
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
          ->check(CLI::IsMember({"cnn5"}))
          ->capture_default_str();
      add_cnn5_options(cmd, options.cnn5);
      add_cnn5_shape_options(cmd, options.cnn5);
    },
    run_summary,
});

}  // namespace
}  // namespace kiln::tools
