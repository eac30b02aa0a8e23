// `kiln export-onnx`: writes a kiln model as an ONNX file (weights/onnx_export.h)
// that onnxruntime, TensorRT or torch can run.
//   kiln export-onnx runs/x/best.safetensors -o model.onnx [--fold-bn] [--opset 13]
//   kiln export-onnx --arch mobilenet_v2 --pretrained mnv2.onnx --size 224 -o out.onnx
//   kiln export-onnx --arch cnn5 --activation mish --input 3x64x64 -o cnn5.onnx
// The first form exports a `kiln train` checkpoint at the input size it was trained
// on; the second a zoo model with the weights of --pretrained (an .onnx file or a
// `kiln import` safetensors), or its initial weights without it; the third a fresh
// cnn5 (initial weights) built from the cnn5 flags of `kiln summary`. The graph takes
// normalised images, (x / 255 - mean) / std per channel: the mean and std go into the
// file's metadata (kiln.input_mean, kiln.input_std).
// --sample FILE also writes a safetensors file with a random batch ("input") and
// kiln's logits for it ("logits"), so another runtime's outputs can be compared
// (tests/fixtures/onnx_eval_with_torch.py, scripts/onnxruntime_check.py).
#include <cstdio>
#include <filesystem>

#include "engine/autograd/grad_mode.h"
#include "engine/core/json_parse.h"
#include "engine/core/rng.h"
#include "engine/tensor/factory.h"
#include "models/cnn5.h"
#include "models/registry.h"
#include "tools/cnn5_options.h"
#include "tools/commands.h"
#include "tools/run_model.h"
#include "weights/onnx_export.h"
#include "weights/safetensors.h"

namespace kiln::tools {
namespace {

struct ExportOptions {
  std::string checkpoint, arch, pretrained, output, sample;
  Cnn5Options cnn5;  // --arch cnn5
  int64_t num_classes = 1000, size = 224, opset = 13;
  bool fold_bn = false;
} options;

std::string join(const std::vector<double>& values) {
  std::string text;
  for (double v : values) text += (text.empty() ? "" : ",") + std::to_string(v);
  return text;
}

int run_export_onnx() {
  const ExportOptions& o = options;
  KILN_CHECK(o.checkpoint.empty() != o.arch.empty(), "export-onnx: give a CHECKPOINT from kiln train, or --arch "
             "(with --pretrained FILE), not ", o.checkpoint.empty() ? "neither" : "both");
  std::shared_ptr<nn::Module> model;
  OnnxExportOptions export_options;
  export_options.fold_batchnorm = o.fold_bn;
  export_options.opset = o.opset;
  std::string described;
  if (!o.checkpoint.empty()) {
    LoadedRun run = load_run(o.checkpoint, Device::cpu());
    model = run.model.module;
    const int64_t channels = run.model.config.value("arch", "") == "cnn5"
                                 ? json_int64(run.model.config.at("cnn5").at("in_channels"), "the run's config", "in_channels") : 3;
    export_options.input_shape = Shape{channels, run.model.image.out_size, run.model.image.out_size};
    export_options.metadata = {{"kiln.arch", run.model.config.value("arch", "")},
                               {"kiln.input_mean", join(run.model.image.mean)},
                               {"kiln.input_std", join(run.model.image.std)},
                               {"kiln.class_names", [&] {
                                  std::string names;
                                  for (const std::string& n : run.checkpoint.class_names) names += (names.empty() ? "" : ",") + n;
                                  return names;
                                }()}};
    described = run.model.description;
  } else if (o.arch == "cnn5") {
    KILN_CHECK(o.pretrained.empty(), "export-onnx: --pretrained is for zoo models; a trained cnn5 is a CHECKPOINT");
    const models::Cnn5Config config = to_config(o.cnn5);
    model = models::make_cnn5(config);
    export_options.input_shape = Shape{config.in_channels, config.input_size, config.input_size};
    export_options.metadata = {{"kiln.arch", "cnn5"}};
    described = config.to_string() + ", initial weights";
  } else {
    if (o.pretrained.empty()) {
      model = models::make_model(o.arch, o.num_classes);
      described = o.arch + ", initial weights (no --pretrained)";
    } else {
      PretrainedModel pretrained = load_pretrained_model(o.arch, o.pretrained);
      model = pretrained.module;
      described = o.arch + ", " + pretrained.description;
    }
    export_options.input_shape = Shape{3, o.size, o.size};
    // Zoo models take images normalised with ImageNet's statistics, as torchvision's do.
    export_options.metadata = {{"kiln.arch", o.arch}, {"kiln.input_mean", "0.485,0.456,0.406"},
                               {"kiln.input_std", "0.229,0.224,0.225"}};
  }
  model->eval();
  const OnnxExport exported = export_onnx(*model, export_options);
  write_onnx(o.output, exported.model);
  std::printf("%s\nwrote %s (%.1f MB): %s", described.c_str(), o.output.c_str(),
              static_cast<double>(std::filesystem::file_size(o.output)) / 1e6, exported.to_string().c_str());
  if (!o.sample.empty()) {
    Rng rng(20241123);
    std::vector<int64_t> dims = {2};
    for (int64_t d : export_options.input_shape.dims()) dims.push_back(d);
    const Tensor input = randn(Shape(dims), rng);
    NoGradGuard no_grad;
    const Tensor logits = model->forward(input);
    save_safetensors(o.sample, {{"input", input}, {"logits", logits}},
                     {{"kiln.onnx", std::filesystem::path(o.output).filename().string()}});
    std::printf("wrote %s: input %s and kiln's logits %s\n", o.sample.c_str(), input.shape().to_string().c_str(),
                logits.shape().to_string().c_str());
  }
  return 0;
}

const bool registered = register_command({
    "export-onnx",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("export-onnx", "write a kiln model as an ONNX file (opset 13)");
      ExportOptions& o = options;
      cmd->add_option("checkpoint", o.checkpoint, "a checkpoint written by kiln train")->check(CLI::ExistingFile);
      cmd->add_option("-o,--output", o.output, "the .onnx file to write")->required();
      cmd->add_flag("--fold-bn", o.fold_bn, "fold each batch norm into the conv before it");
      cmd->add_option("--opset", o.opset, "ONNX opset of the default domain, 13..17")->capture_default_str();
      std::vector<std::string> archs = models::model_names();
      archs.insert(archs.begin(), "cnn5");
      cmd->add_option("--arch", o.arch, "instead of a checkpoint: a zoo model (resnet18, vgg16_bn, mobilenet_v2, ...) "
                      "or cnn5 (with the cnn5 flags)")
          ->check(CLI::IsMember(archs));
      cmd->add_option("--pretrained", o.pretrained, "with --arch: an .onnx file or a kiln import .safetensors")
          ->check(CLI::ExistingFile);
      cmd->add_option("--num-classes", o.num_classes, "with --arch and no --pretrained: classes of the head")
          ->capture_default_str();
      cmd->add_option("--size", o.size, "with --arch: the input height and width")->capture_default_str();
      cmd->add_option("--sample", o.sample, "also write a random input batch and kiln's logits (.safetensors)");
      add_cnn5_options(cmd, o.cnn5);
      add_cnn5_shape_options(cmd, o.cnn5);
    },
    run_export_onnx,
});

}  // namespace
}  // namespace kiln::tools
