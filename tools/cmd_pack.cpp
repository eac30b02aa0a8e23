// `kiln pack DATA -o data.kpack --size 256 [--fit crop|pad] [--channels 3] [--skip-bad]`:
// decodes an image folder or CSV once, brings every image to size x size and writes
// the pixels, labels, class names and file names into one memory-mappable file
// (data/pack.h). Training then reads the pack instead of decoding JPEGs every epoch.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "data/image_folder.h"
#include "data/loader.h"
#include "data/pack.h"
#include "tools/commands.h"

namespace kiln::tools {
namespace {

struct PackOptions {
  std::string data;
  std::string output;
  int64_t size = 224;
  std::string fit = "crop";
  int64_t channels = 3;
  bool skip_bad = false;
} options;

int run_pack() {
  data::LoadConfig config;
  config.size = options.size;
  config.fit = data::parse_fit(options.fit);
  config.channels = options.channels;
  config.skip_bad = options.skip_bad;
  const auto start = std::chrono::steady_clock::now();
  const data::Dataset dataset = data::load_images(options.data, config);
  data::write_pack(options.output, dataset);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("packed %lld images of %lld classes from %s into %s\n", static_cast<long long>(dataset.size()),
              static_cast<long long>(dataset.num_classes()), options.data.c_str(), options.output.c_str());
  std::printf("  %lld x %lld x %lld u8 (%s), %.1f MB, %.1f s (%.0f images/s)\n", static_cast<long long>(options.channels),
              static_cast<long long>(options.size), static_cast<long long>(options.size), options.fit.c_str(),
              static_cast<double>(std::filesystem::file_size(options.output)) / 1e6, seconds,
              static_cast<double>(dataset.size()) / seconds);
  if (dataset.skipped) std::printf("  skipped %lld unreadable files\n", static_cast<long long>(dataset.skipped));
  // How fast training can read it back: one epoch through the batch loader.
  const data::LoaderThroughput throughput = data::measure_loader_throughput(data::open_pack(options.output), {});
  std::printf("  loader: %.0f images/s from the pack (batch 64, 2 workers)\n", throughput.images_per_second);
  return 0;
}

const bool registered = register_command({
    "pack",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("pack", "decode an image folder or CSV once into a memory-mappable .kpack");
      cmd->add_option("data", options.data, "image folder (one sub-folder per class) or CSV of image,label rows")
          ->required();
      cmd->add_option("-o,--output", options.output, "the .kpack file to write")->required();
      cmd->add_option("--size", options.size, "output height = width in pixels")->check(CLI::PositiveNumber);
      cmd->add_option("--fit", options.fit, "crop: shorter side to size, centre crop; pad: longer side, letterbox")
          ->check(CLI::IsMember({"crop", "pad"}));
      cmd->add_option("--channels", options.channels, "3 (RGB) or 1 (grey)")->check(CLI::IsMember({1, 3}));
      cmd->add_flag("--skip-bad", options.skip_bad, "leave unreadable images out with a warning instead of failing");
    },
    run_pack,
});

}  // namespace
}  // namespace kiln::tools
