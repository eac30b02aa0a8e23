// `kiln import model.onnx --arch resnet18 -o weights.safetensors`: loads an ONNX
// model's weights into kiln's native architecture by structure (weights/onnx_import.h)
// and saves the model's state_dict, atomically, as safetensors. Batch norms that
// received a folded conv bias are listed in the metadata ("kiln.frozen_batchnorm"),
// because their identity statistics must stay frozen when the weights are fine-tuned.
#include <cstdio>

#include "tools/commands.h"
#include "weights/onnx_import.h"
#include "weights/safetensors.h"

#include "models/registry.h"

namespace kiln::tools {
namespace {

struct ImportOptions {
  std::string onnx_path, arch, output;
  int64_t num_classes = 1000;
} options;

int run_import() {
  auto model = models::make_model(options.arch, options.num_classes);
  const ImportReport report = import_onnx(options.onnx_path, *model);
  std::printf("%s -> %s (%lld classes)\n%s\n", options.onnx_path.c_str(), options.arch.c_str(),
              static_cast<long long>(options.num_classes), report.to_string().c_str());
  std::string frozen;
  for (const std::string& name : report.frozen_batchnorms) frozen += (frozen.empty() ? "" : ",") + name;
  save_safetensors(options.output, model->state_dict(),
                   {{"kiln.format", "state_dict"}, {"kiln.arch", options.arch},
                    {"kiln.num_classes", std::to_string(options.num_classes)},
                    {"kiln.source", options.onnx_path}, {"kiln.frozen_batchnorm", frozen}});
  std::printf("wrote %s\n", options.output.c_str());
  return 0;
}

const bool registered = register_command({
    "import",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("import", "load an ONNX model's weights into a kiln architecture");
      cmd->add_option("onnx", options.onnx_path, "the .onnx file")->required()->check(CLI::ExistingFile);
      cmd->add_option("--arch", options.arch, "kiln architecture, e.g. resnet18, vgg16_bn, mobilenet_v2")->required();
      cmd->add_option("--num-classes", options.num_classes, "classes of the classifier head")->check(CLI::PositiveNumber);
      cmd->add_option("-o,--output", options.output, "the .safetensors file to write")->required();
    },
    run_import,
});

}  // namespace
}  // namespace kiln::tools
