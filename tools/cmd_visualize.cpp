// `kiln visualize ...`: pictures of what a model has learned (report/visualize.h,
// the math in docs/visualize.md). MODEL is a `kiln train` checkpoint, or, with
// --arch A --pretrained FILE (ONNX or safetensors), a zoo model as the file has it
// (then MODEL is left out: every positional argument is an image).
//
//   kiln visualize filters MODEL [--layer block1.conv] -o filters.png
//   kiln visualize activations MODEL IMAGE [--layer L] -o maps.png
//   kiln visualize guided-backprop MODEL IMAGES... [--layer L] [--neurons 10 | 3,7,12] -o guided.png
//   kiln visualize gradcam MODEL IMAGE [--class C] [--layer L] -o cam.png
//
// Images are fitted to the model's input the way its training run did (or, for a
// pretrained file, resized to --size / 0.875 and centre-cropped to --size, as
// torchvision evaluates ImageNet models) and normalised with
// the model's mean and std. Default layers: filters and activations the first
// conv; guided-backprop and gradcam the last conv block (report::last_conv_block).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "data/image_io.h"
#include "engine/augment/augment.h"
#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "report/visualize.h"
#include "tools/commands.h"
#include "tools/run_model.h"

namespace kiln::tools {
namespace {

// Options every visualize subcommand shares.
struct VisualizeOptions {
  std::vector<std::string> positional;  // [MODEL] then images
  std::string arch, pretrained, class_names_file;
  int64_t size = 224;
  std::string device = "auto";
  std::string layer;
  std::string output;
  // filters
  std::string normalization = "per-filter";
  // guided-backprop
  std::string neurons = "10";
  int64_t batch_size = 32;
  // gradcam
  std::string target_class;
  double alpha = 0.5;
};

struct Subcommands {
  CLI::App *visualize = nullptr, *filters = nullptr, *activations = nullptr, *guided = nullptr, *gradcam = nullptr;
  VisualizeOptions filters_options, activations_options, guided_options, gradcam_options;
} cli;

// The model of a visualize command, from its shared options (tools/run_model.h).
InferenceModel load_model(const VisualizeOptions& o) {
  InferenceSource source;
  source.command = "visualize";
  source.positional = o.positional;
  source.arch = o.arch;
  source.pretrained = o.pretrained;
  source.class_names_file = o.class_names_file;
  source.size = o.size;
  source.device = o.device;
  InferenceModel m = load_inference_model(source);
  std::printf("model: %s\n", m.description.c_str());
  return m;
}

// The model's input for images u8 (N, C, S, S): normalised, on the model's device.
Tensor model_input(const InferenceModel& m, const Tensor& images_u8) {
  return augment::eval_transform(images_u8.to(m.device), m.image);
}

report::RgbImage image_at(const Tensor& images_u8, int64_t n) {
  const int64_t channels = images_u8.shape()[1], size = images_u8.shape()[2];
  return report::planar_to_image(images_u8.data<uint8_t>() + n * channels * size * size, channels, size, size);
}

// Enlarges small maps so that a tile is at least `pixels` wide.
int scale_for(int64_t side, int pixels) { return static_cast<int>(std::max<int64_t>(1, (pixels + side - 1) / side)); }

void save(const std::string& path, const report::RgbImage& image) {
  report::write_png(path, image);
  std::printf("wrote %s (%dx%d)\n", path.c_str(), image.width, image.height);
}

int run_filters(const VisualizeOptions& o) {
  InferenceModel m = load_model(o);
  KILN_CHECK(m.images.empty(), "visualize filters: takes no images, got '", m.images.front(), "'");
  const std::string layer = o.layer.empty() ? report::first_conv_layer(*m.module) : o.layer;
  auto* conv = dynamic_cast<nn::Conv2d*>(&report::find_layer(*m.module, layer));
  KILN_CHECK(conv != nullptr, "visualize filters: '", layer, "' is a ", report::find_layer(*m.module, layer).type_name(),
             ", not a Conv2d (the first conv is ", report::first_conv_layer(*m.module), ")");
  const Shape& shape = conv->weight.shape();
  std::printf("layer %s: %lld filters of %lldx%lldx%lld, %s normalisation\n", layer.c_str(),
              static_cast<long long>(shape[0]), static_cast<long long>(shape[1]), static_cast<long long>(shape[2]),
              static_cast<long long>(shape[3]), o.normalization.c_str());
  const int scale = scale_for(std::max(shape[2], shape[3]), 48);
  save(o.output, report::filter_grid(conv->weight, report::parse_filter_scaling(o.normalization), scale));
  return 0;
}

int run_activations(const VisualizeOptions& o) {
  InferenceModel m = load_model(o);
  KILN_CHECK(m.images.size() == 1, "visualize activations: give one image, got ", m.images.size());
  const std::string layer = o.layer.empty() ? report::first_conv_layer(*m.module) : o.layer;
  const Tensor images = load_images(m, m.images);
  const Tensor maps = report::layer_activations(*m.module, layer, model_input(m, images));
  KILN_CHECK(maps.dim() == 4, "visualize activations: layer '", layer, "' gives ", maps.shape(),
             ", not feature maps (N, K, h, w); choose a conv layer or block");
  std::printf("layer %s: %lld maps of %lldx%lld\n", layer.c_str(), static_cast<long long>(maps.shape()[1]),
              static_cast<long long>(maps.shape()[2]), static_cast<long long>(maps.shape()[3]));
  save(o.output, report::feature_map_grid(maps, scale_for(std::max(maps.shape()[2], maps.shape()[3]), 64)));
  return 0;
}

// --neurons: "N" = channels 0..N-1, "a,b,c" = those channels.
std::vector<int64_t> parse_neurons(const std::string& text, int64_t channels) {
  std::vector<int64_t> out;
  try {
    if (text.find(',') == std::string::npos) {
      const int64_t count = std::stoll(text);
      KILN_CHECK(count >= 1, "--neurons must be a positive count or a list, got '", text, "'");
      for (int64_t k = 0; k < std::min(count, channels); ++k) out.push_back(k);
    } else {
      std::stringstream parts(text);
      for (std::string part; std::getline(parts, part, ',');)
        if (!part.empty()) out.push_back(std::stoll(part));
    }
  } catch (const std::logic_error&) {  // stoll: not a number
    KILN_FAIL("--neurons must be a count (10) or a comma list of channels (3,7,12), got '", text, "'");
  }
  for (int64_t k : out)
    KILN_CHECK(k >= 0 && k < channels, "--neurons: channel ", k, " is out of range (the layer has ", channels,
               " channels)");
  return out;
}

int run_guided_backprop(const VisualizeOptions& o) {
  InferenceModel m = load_model(o);
  const std::vector<std::string> files = data::list_image_files(m.images, "visualize");
  const Tensor images = load_images(m, files);
  const int64_t n_images = images.shape()[0];
  const std::string layer = o.layer.empty() ? report::last_conv_block(*m.module, model_input(m, images.narrow0(0, 1)))
                                            : o.layer;
  // Pass 1: which image excites each channel most (its largest activation anywhere).
  const report::StrongestImages strongest =
      report::strongest_image_per_channel(n_images, o.batch_size, [&](int64_t start, int64_t count) {
        return report::layer_activations(*m.module, layer, model_input(m, images.narrow0(start, count)));
      });
  const std::vector<int64_t> neurons = parse_neurons(o.neurons, static_cast<int64_t>(strongest.image.size()));
  // Pass 2: one batch with each neuron's best image, one backward for all of them.
  Tensor chosen = empty({static_cast<int64_t>(neurons.size()), images.shape()[1], images.shape()[2], images.shape()[3]},
                        {DType::u8});
  const int64_t image_bytes = images.numel() / n_images;
  for (size_t i = 0; i < neurons.size(); ++i)
    std::copy_n(images.data<uint8_t>() + strongest.image[neurons[i]] * image_bytes, image_bytes,
                chosen.data<uint8_t>() + static_cast<int64_t>(i) * image_bytes);
  const report::GuidedBackprop guided = report::guided_backprop(*m.module, layer, model_input(m, chosen), neurons);
  const Tensor gradient = guided.gradient.detach().to(Device::cpu());
  std::printf("layer %s, %lld images; neuron: the image that excites it most (its peak activation)\n", layer.c_str(),
              static_cast<long long>(n_images));
  std::vector<report::RgbImage> crops, pictures;
  for (size_t i = 0; i < neurons.size(); ++i) {
    std::printf("  channel %4lld: %s (%.4g)\n", static_cast<long long>(neurons[i]),
                files[static_cast<size_t>(strongest.image[neurons[i]])].c_str(), strongest.value[neurons[i]]);
    crops.push_back(image_at(chosen, static_cast<int64_t>(i)));
    pictures.push_back(report::gradient_image(gradient.narrow0(static_cast<int64_t>(i), 1)));
  }
  // One column per neuron: the image on top, its guided-backprop picture below.
  std::vector<report::RgbImage> tiles = crops;
  tiles.insert(tiles.end(), pictures.begin(), pictures.end());
  save(o.output, report::tile_grid(tiles, static_cast<int>(neurons.size())));
  return 0;
}

int64_t parse_class(const InferenceModel& m, const std::string& text) {
  if (text.empty()) return -1;  // the predicted class
  auto named = std::find(m.class_names.begin(), m.class_names.end(), text);
  if (named != m.class_names.end()) return named - m.class_names.begin();
  try {
    size_t used = 0;
    const int64_t k = std::stoll(text, &used);
    if (used == text.size()) return k;
  } catch (const std::logic_error&) {
  }
  KILN_FAIL("--class: '", text, "' is neither a class index nor a class name",
            m.class_names.empty() ? " (no class names known; pass --class-names FILE)" : "");
}

int run_gradcam(const VisualizeOptions& o) {
  InferenceModel m = load_model(o);
  KILN_CHECK(m.images.size() == 1, "visualize gradcam: give one image, got ", m.images.size());
  const Tensor images = load_images(m, m.images);
  const Tensor x = model_input(m, images);
  const std::string layer = o.layer.empty() ? report::last_conv_block(*m.module, x) : o.layer;
  const report::GradCam cam = report::grad_cam(*m.module, layer, x, parse_class(m, o.target_class));
  // Softmax probabilities for the top-5 print.
  const double top = *std::max_element(cam.logits.begin(), cam.logits.end());
  double total = 0;
  for (double v : cam.logits) total += std::exp(v - top);
  std::printf("top-5:\n");
  for (int64_t k : report::top_k_indices(cam.logits, 5))
    std::printf("  %-32s %.4f\n", class_label(m, k).c_str(), std::exp(cam.logits[k] - top) / total);
  std::printf("Grad-CAM of class %s at layer %s (%lldx%lld)\n", class_label(m, cam.target_class).c_str(),
              layer.c_str(), static_cast<long long>(cam.height), static_cast<long long>(cam.width));
  const int64_t size = images.shape()[2];
  const report::RgbImage image = image_at(images, 0);
  const std::vector<double> upsampled = report::upsample_bilinear(cam.cam, cam.height, cam.width, size, size);
  save(o.output, report::tile_grid({image, report::cam_overlay(image, upsampled, o.alpha)}, 2));
  return 0;
}

void add_shared_options(CLI::App* cmd, VisualizeOptions& o, const std::string& positional_help,
                        const std::string& default_output, const std::string& layer_help) {
  cmd->add_option("inputs", o.positional, positional_help);
  cmd->add_option("--arch", o.arch, "zoo architecture of --pretrained (mobilenet_v2, resnet18, ...)");
  cmd->add_option("--pretrained", o.pretrained, "an .onnx file or kiln import .safetensors (instead of a checkpoint)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--class-names", o.class_names_file, "a text file with one class name per line");
  cmd->add_option("--size", o.size, "input size for --pretrained (resize to size/0.875, centre crop)")->capture_default_str();
  cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
  cmd->add_option("--layer", o.layer, layer_help);
  o.output = default_output;
  cmd->add_option("-o,--output", o.output, "the PNG to write")->capture_default_str();
}

const bool registered = register_command({
    "visualize",
    [](CLI::App& app) {
      cli.visualize = app.add_subcommand("visualize", "pictures of a model: filters, feature maps, guided backprop, Grad-CAM");
      cli.visualize->require_subcommand(1);
      cli.filters = cli.visualize->add_subcommand("filters", "a conv layer's kernels as an image grid");
      add_shared_options(cli.filters, cli.filters_options, "MODEL (a kiln checkpoint; none with --pretrained)",
                         "filters.png", "a Conv2d module path (default: the first conv)");
      cli.filters->add_option("--normalize", cli.filters_options.normalization,
                              "min-max per-filter (each tile its full range) or global (tiles comparable)")
          ->check(CLI::IsMember({"per-filter", "global"}))
          ->capture_default_str();
      cli.activations = cli.visualize->add_subcommand("activations", "one image's feature maps at a layer");
      add_shared_options(cli.activations, cli.activations_options, "[MODEL] IMAGE", "activations.png",
                         "a module path (default: the first conv)");
      cli.guided = cli.visualize->add_subcommand(
          "guided-backprop", "guided backpropagation of chosen neurons, each from the image that excites it most");
      add_shared_options(cli.guided, cli.guided_options, "[MODEL] IMAGES (files or folders)", "guided_backprop.png",
                         "a module path (default: the last conv block)");
      cli.guided->add_option("--neurons", cli.guided_options.neurons,
                             "how many channels from 0 (10), or which ones (3,7,12)")
          ->capture_default_str();
      cli.guided->add_option("--batch-size", cli.guided_options.batch_size, "images per forward pass")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      cli.gradcam = cli.visualize->add_subcommand("gradcam", "Grad-CAM heat map of a class over an image");
      add_shared_options(cli.gradcam, cli.gradcam_options, "[MODEL] IMAGE", "gradcam.png",
                         "a module path (default: the last conv block)");
      cli.gradcam->add_option("--class", cli.gradcam_options.target_class,
                              "class index or name (default: the predicted class)");
      cli.gradcam->add_option("--alpha", cli.gradcam_options.alpha, "weight of the heat map over the image")
          ->check(CLI::Range(0.0, 1.0))
          ->capture_default_str();
    },
    [] {
      if (cli.visualize->got_subcommand(cli.filters)) return run_filters(cli.filters_options);
      if (cli.visualize->got_subcommand(cli.activations)) return run_activations(cli.activations_options);
      if (cli.visualize->got_subcommand(cli.guided)) return run_guided_backprop(cli.guided_options);
      return run_gradcam(cli.gradcam_options);
    },
});

}  // namespace
}  // namespace kiln::tools
